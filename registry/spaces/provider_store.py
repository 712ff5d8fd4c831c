"""What providers report about the spaces they hold: root ETag, usage, reachability."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from registry.core.models import Space, table
from registry.spaces.store import update_space

spaces = table(Space)


async def held_spaces(conn: AsyncConnection) -> list[tuple[str, str]]:
    """(space id, provider name) of every space."""
    rows = await conn.execute(select(spaces.c.id, spaces.c.provider))
    return [(space_id, provider) for space_id, provider in rows]


async def record_content(
    conn: AsyncConnection, provider: str, space_id: str, etag: str, used: int, now: datetime
) -> bool:
    """Store a space's new ETag and usage; False when the space is unknown to this provider
    or nothing changed (so a repeated report logs nothing)."""
    found = (
        await conn.execute(
            select(spaces.c.etag, spaces.c.quota_used)
            .where(spaces.c.id == space_id, spaces.c.provider == provider)
            .with_for_update()
        )
    ).first()
    if found is None or (found.etag, found.quota_used) == (etag, used):
        return False
    await update_space(conn, space_id, {"etag": etag, "quota_used": used}, now)
    return True


async def mark_availability(conn: AsyncConnection, provider: str, state: str) -> list[str]:
    """Set the provider's spaces to `state`; returns those that were not in it already."""
    affected = list(
        (
            await conn.execute(
                select(spaces.c.id).where(
                    spaces.c.provider == provider, spaces.c.availability != state
                )
            )
        ).scalars()
    )
    if affected:
        await conn.execute(
            update(spaces).where(spaces.c.id.in_(affected)).values(availability=state)
        )
    return affected
