"""Who is calling: the authenticated user as the registry sees them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    user_id: str
    username: str
    display_name: str
    groups: tuple[str, ...]
    is_admin: bool
