"""Webhook subscriptions and the spaces each one covers."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from registry.core.models import Subscription, SubscriptionDrive, table

subscriptions = table(Subscription)
drives = table(SubscriptionDrive)


async def insert(conn: AsyncConnection, values: dict[str, Any], space_ids: Sequence[str]) -> None:
    await conn.execute(subscriptions.insert().values(**values))
    if space_ids:
        await conn.execute(
            drives.insert(), [{"subscription_id": values["id"], "space_id": s} for s in space_ids]
        )


# A subscription with the drives it lists (None: all the owner's drives).
WithDrives = tuple[Row[Any], list[str] | None]


async def owned(conn: AsyncConnection, owner_id: str) -> list[WithDrives]:
    rows = (
        await conn.execute(
            select(subscriptions)
            .where(subscriptions.c.owner_id == owner_id)
            .order_by(subscriptions.c.created_at, subscriptions.c.id)
        )
    ).all()
    return await _with_drives(conn, rows)


async def get(conn: AsyncConnection, subscription_id: str, owner_id: str) -> WithDrives | None:
    row = (
        await conn.execute(
            select(subscriptions).where(
                subscriptions.c.id == subscription_id, subscriptions.c.owner_id == owner_id
            )
        )
    ).first()
    return None if row is None else (await _with_drives(conn, [row]))[0]


async def _with_drives(conn: AsyncConnection, rows: Sequence[Row[Any]]) -> list[WithDrives]:
    """One query for the drives of every listed subscription among `rows`."""
    listed: dict[str, list[str]] = {row.id: [] for row in rows if not row.all_drives}
    if listed:
        found = await conn.execute(
            select(drives.c.subscription_id, drives.c.space_id)
            .where(drives.c.subscription_id.in_(listed))
            .order_by(drives.c.space_id)
        )
        for subscription_id, space_id in found:
            listed[subscription_id].append(space_id)
    return [(row, listed.get(row.id)) for row in rows]


async def renew(conn: AsyncConnection, subscription_id: str, expires_at: datetime) -> None:
    await conn.execute(
        update(subscriptions)
        .where(subscriptions.c.id == subscription_id)
        .values(expires_at=expires_at)
    )


async def remove(conn: AsyncConnection, subscription_id: str) -> None:
    await conn.execute(delete(drives).where(drives.c.subscription_id == subscription_id))
    await conn.execute(delete(subscriptions).where(subscriptions.c.id == subscription_id))


async def remove_expired(conn: AsyncConnection, now: datetime) -> int:
    expired = select(subscriptions.c.id).where(subscriptions.c.expires_at <= now)
    await conn.execute(delete(drives).where(drives.c.subscription_id.in_(expired)))
    gone = await conn.execute(delete(subscriptions).where(subscriptions.c.expires_at <= now))
    return int(gone.rowcount or 0)


async def secrets(conn: AsyncConnection, subscription_ids: Collection[str]) -> dict[str, str]:
    """The signing secret of each of these subscriptions that still exists."""
    if not subscription_ids:
        return {}
    found = await conn.execute(
        select(subscriptions.c.id, subscriptions.c.secret).where(
            subscriptions.c.id.in_(subscription_ids)
        )
    )
    return {row.id: row.secret for row in found}
