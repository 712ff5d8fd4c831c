"""What a space's name, description and quota may be, and the alias slug made from a name."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from registry.core.errors import BadRequest
from registry.core.http import INT64_MAX
from registry.core.text import described, unsafe_character

NAME_MAX = 255
DESCRIPTION_MAX = 4096
QUOTA_MAX = INT64_MAX  # the column is a signed 64-bit integer on SQLite and PostgreSQL
FORBIDDEN_NAME_CHARACTERS = set('/\\.:?*"><|')


def validate_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise BadRequest("name must be a non-empty string")
    if len(name) > NAME_MAX:
        raise BadRequest(f"name must be at most {NAME_MAX} characters")
    if bad := sorted(FORBIDDEN_NAME_CHARACTERS & set(name)):
        raise BadRequest(f"name must not contain {' '.join(bad)}")
    if (unsafe := unsafe_character(name)) is not None:
        raise BadRequest(f"name must not contain {described(unsafe)}: no control characters")
    return name.strip()


def validate_quota(total: Any) -> int:
    if isinstance(total, bool) or not isinstance(total, int) or not 0 <= total <= QUOTA_MAX:
        raise BadRequest(f"quota.total must be a whole number from 0 (unlimited) to {QUOTA_MAX}")
    return total


def quota_patch(value: Any) -> int | None:
    if not isinstance(value, dict) or "total" not in value:
        raise BadRequest("quota must be an object with 'total'")
    return validate_quota(value["total"]) or None


def description_of(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > DESCRIPTION_MAX:
        raise BadRequest(f"description must be a string of at most {DESCRIPTION_MAX} characters")
    if (unsafe := unsafe_character(value, lines=True)) is not None:
        raise BadRequest(f"description must not contain {described(unsafe)}: no control characters")
    return value


def slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-") or "space"
