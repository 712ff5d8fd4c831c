"""Which spaces principals hold a live role in: one predicate for the feed, the SSE
listeners and webhook matching."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from registry.access.principal import PrincipalKey
from registry.core.models import Member, table

members = table(Member)


def live_roles(keys: Iterable[PrincipalKey], now: Any) -> Any:
    """Member rows of these principals whose role has not expired at `now` (a value or a
    bind parameter)."""
    return and_(
        or_(*(and_(members.c.principal_type == t, members.c.principal_id == i) for t, i in keys)),
        or_(members.c.expires_at.is_(None), members.c.expires_at > now),
    )


async def spaces_held(
    conn: AsyncConnection, keys: Iterable[PrincipalKey], now: datetime
) -> dict[str, datetime | None]:
    """Space id to when the principals' role there ends (None: never), the latest of those
    live at `now`."""
    rows = await conn.execute(
        select(members.c.space_id, members.c.expires_at).where(live_roles(keys, now))
    )
    held: dict[str, datetime | None] = {}
    for space_id, expires in rows:
        if space_id not in held:
            held[space_id] = expires
        else:
            prior = held[space_id]
            held[space_id] = None if prior is None or expires is None else max(prior, expires)
    return held
