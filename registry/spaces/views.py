"""Rows from the store grouped into spaces with their members (who holds which role is
`registry.access.rule`'s to say)."""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy.engine import Row

from registry.core.models import Space, table

# A space's columns; a plain named tuple, as its fields are read often (see `drive_json`).
SPACE_FIELDS: tuple[str, ...] = tuple(table(Space).c.keys())
SpaceRecord = namedtuple("SpaceRecord", SPACE_FIELDS)  # type: ignore[misc]


@dataclass(frozen=True, slots=True)
class MemberView:
    id: str
    principal_type: str
    principal_id: str
    role: str
    display_name: str
    expires_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SpaceView:
    space: Any
    members: tuple[MemberView, ...]

    def member(self, member_id: str) -> MemberView | None:
        return next((m for m in self.members if m.id == member_id), None)


def group_rows(rows: Sequence[Row[Any]]) -> list[SpaceView]:
    """Fold the one-row-per-member result of the store into spaces, keeping order."""
    if not rows:
        return []
    fields = rows[0]._fields
    space_id_of = itemgetter(fields.index("id"))
    space_of = itemgetter(*(fields.index(name) for name in SPACE_FIELDS))
    member_of = itemgetter(*(fields.index(name) for name in _MEMBER_FIELDS))
    grouped: dict[str, tuple[SpaceRecord, list[MemberView]]] = {}
    for row in rows:
        space_id = space_id_of(row)
        entry = grouped.get(space_id)
        if entry is None:
            entry = grouped[space_id] = (SpaceRecord._make(space_of(row)), [])
        member_id, kind, principal_id, role, display_name, expires_at, created_at = member_of(row)
        if member_id is not None:
            entry[1].append(
                MemberView(
                    member_id,
                    kind,
                    principal_id,
                    role,
                    display_name or principal_id,
                    expires_at,
                    created_at,
                )
            )
    return [SpaceView(space, tuple(found)) for space, found in grouped.values()]


# The member columns of a store row, in `MemberView` order; indexing a row by position is
# several times cheaper than by name.
_MEMBER_FIELDS = (
    "m_id",
    "m_type",
    "m_principal",
    "m_role",
    "m_display_name",
    "m_expires",
    "m_created",
)
