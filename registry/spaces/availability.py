"""Whether a space's files can be reached now: its provider's for a space we hold, the peer's
for a mountpoint. Every path that learns it (a provider's report; for a mountpoint, the proxy's
reads and the renewals of its subscription at the peer) sets it here, and each change is logged
as a change of the space in the caller's transaction, so that listings, feeds, SSE streams and
webhooks say it together."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from registry.changes import log as changes
from registry.spaces.store import spaces

AVAILABLE, UNAVAILABLE = "available", "unavailable"


async def set_state(conn: AsyncConnection, which: ColumnElement[bool], state: str) -> list[str]:
    """Set the spaces `which` selects to `state`; returns those that were not in it already."""
    found = select(spaces.c.id).where(which, spaces.c.availability != state)
    affected = list((await conn.execute(found)).scalars())
    if affected:
        await conn.execute(
            update(spaces).where(spaces.c.id.in_(affected)).values(availability=state)
        )
    return affected


def state_of(available: bool) -> str:
    """The `availability` column's value (and the logged change's) for `available`."""
    return AVAILABLE if available else UNAVAILABLE


async def mark(
    conn: AsyncConnection, which: ColumnElement[bool], available: bool, reason: str, now: datetime
) -> list[str]:
    """`set_state`, and a logged `availability` change for each space that changed (the
    caller's transaction is a `UnitOfWork`'s)."""
    state = state_of(available)
    affected = await set_state(conn, which, state)
    data = {"availability": state, "reason": reason}
    for space_id in affected:
        await changes.append(conn, space_id, "availability", data, now)
    return affected
