"""Rows from the store grouped into spaces with their members, and the caller's role on each."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Row

from registry import roles
from registry.principal import Principal


@dataclass(frozen=True)
class MemberView:
    id: str
    principal_type: str
    principal_id: str
    role: str
    display_name: str
    expires_at: datetime | None
    created_at: datetime

    def active(self, now: datetime) -> bool:
        return self.expires_at is None or _aware(self.expires_at) > now


@dataclass(frozen=True)
class SpaceView:
    space: Any
    members: tuple[MemberView, ...]

    def role_of(self, principal: Principal) -> str | None:
        now = datetime.now(UTC)
        held = [
            m.role
            for m in self.members
            if m.active(now)
            and (
                (m.principal_type == "user" and m.principal_id == principal.user_id)
                or (m.principal_type == "group" and m.principal_id in principal.groups)
            )
        ]
        return roles.best(held)

    def member(self, member_id: str) -> MemberView | None:
        return next((m for m in self.members if m.id == member_id), None)


def group_rows(rows: Iterable[Row]) -> list[SpaceView]:
    """Fold the one-row-per-member result of the store into spaces, keeping order."""
    grouped: dict[str, tuple[Any, list[MemberView]]] = {}
    for row in rows:
        entry = grouped.get(row.id)
        if entry is None:
            entry = grouped[row.id] = (row, [])
        if row.m_id is not None:
            entry[1].append(
                MemberView(
                    id=row.m_id,
                    principal_type=row.m_type,
                    principal_id=row.m_principal,
                    role=row.m_role,
                    display_name=row.m_display_name or row.m_principal,
                    expires_at=row.m_expires,
                    created_at=row.m_created,
                )
            )
    return [SpaceView(space, tuple(found)) for space, found in grouped.values()]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
