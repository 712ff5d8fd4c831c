"""What a space's name, description and quota may be, and the alias slug made from a name."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from registry.core.errors import BadRequest

NAME_MAX = 255
FORBIDDEN_NAME_CHARACTERS = set('/\\.:?*"><|')


def validate_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise BadRequest("name must be a non-empty string")
    if len(name) > NAME_MAX:
        raise BadRequest(f"name must be at most {NAME_MAX} characters")
    if bad := sorted(FORBIDDEN_NAME_CHARACTERS & set(name)):
        raise BadRequest(f"name must not contain {' '.join(bad)}")
    return name.strip()


def validate_quota(total: Any) -> int:
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        raise BadRequest("quota.total must be a non-negative integer (0: unlimited)")
    return total


def quota_patch(value: Any) -> int | None:
    if not isinstance(value, dict) or "total" not in value:
        raise BadRequest("quota must be an object with 'total'")
    return validate_quota(value["total"]) or None


def description_of(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > 4096:
        raise BadRequest("description must be a string of at most 4096 characters")
    return value


def slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-") or "space"
