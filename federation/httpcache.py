"""Freshness lifetime from HTTP cache headers (RFC 9111, the parts a JSON fetch needs)."""

from __future__ import annotations

from collections.abc import Mapping
from email.utils import parsedate_to_datetime

__all__ = ["ttl_from_headers"]


def ttl_from_headers(headers: Mapping[str, str]) -> float | None:
    """Seconds the answer stays fresh; 0 for no-store/no-cache; None when headers say nothing."""
    directives: dict[str, str] = {}
    for part in headers.get("cache-control", "").split(","):
        name, _, value = part.strip().partition("=")
        if name:
            directives[name.lower()] = value.strip().strip('"')
    if "no-store" in directives or "no-cache" in directives:
        return 0.0
    age = _number(headers.get("age", "")) or 0.0
    if "max-age" in directives:
        max_age = _number(directives["max-age"])
        if max_age is not None:
            return max(0.0, max_age - age)
    expires, date = headers.get("expires"), headers.get("date")
    if expires:
        try:
            delta = parsedate_to_datetime(expires) - parsedate_to_datetime(date or expires)
        except (TypeError, ValueError):
            return 0.0  # an invalid Expires means "already expired" (RFC 9111 5.3)
        return max(0.0, delta.total_seconds() - age)
    return None


def _number(text: str) -> float | None:
    return float(text) if text.isdigit() else None
