"""The SQL of WebDAV locks. Every function takes the caller's connection; expired locks are
never returned, and the retention sweep removes them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from registry.core.models import DavLock, Space, table
from registry.spaces.webdav.paths import ancestors, is_within

LOCKS = table(DavLock)


@dataclass(frozen=True)
class Lock:
    token: str
    space_id: str
    path: str
    depth: str
    scope: str
    owner: str
    principal: str
    timeout_seconds: int | None
    expires_at: datetime | None

    def covers(self, path: str) -> bool:
        """Whether this lock protects `path` (its root, or below it at depth infinity)."""
        return path == self.path or (self.depth == "infinity" and is_within(path, self.path))


def _live(now: datetime) -> ColumnElement[bool]:
    return or_(LOCKS.c.expires_at.is_(None), LOCKS.c.expires_at > now)


def _lock(row: object) -> Lock:
    return Lock(*(getattr(row, field) for field in Lock.__dataclass_fields__))


async def hold_space(conn: AsyncConnection, space_id: str) -> None:
    """Serialise lock changes in one space between replicas (a row lock on PostgreSQL; SQLite
    has one writer anyway)."""
    await conn.execute(select(Space.id).where(Space.id == space_id).with_for_update())


async def covering(conn: AsyncConnection, space_id: str, path: str, now: datetime) -> list[Lock]:
    """The live locks that protect `path`: on it, or on a folder above it at depth infinity."""
    rows = await conn.execute(
        select(LOCKS).where(
            LOCKS.c.space_id == space_id, LOCKS.c.path.in_(ancestors(path)), _live(now)
        )
    )
    return [lock for lock in map(_lock, rows) if lock.covers(path)]


async def below(conn: AsyncConnection, space_id: str, path: str, now: datetime) -> list[Lock]:
    """The live locks on `path` or anything below it."""
    inside = LOCKS.c.path.startswith(path.rstrip("/") + "/", autoescape=True)
    rows = await conn.execute(
        select(LOCKS).where(
            LOCKS.c.space_id == space_id, or_(LOCKS.c.path == path, inside), _live(now)
        )
    )
    return [_lock(row) for row in rows]


async def in_space(conn: AsyncConnection, space_id: str, now: datetime) -> list[Lock]:
    rows = await conn.execute(select(LOCKS).where(LOCKS.c.space_id == space_id, _live(now)))
    return [_lock(row) for row in rows]


async def by_tokens(conn: AsyncConnection, tokens: Sequence[str], now: datetime) -> list[Lock]:
    if not tokens:
        return []
    rows = await conn.execute(select(LOCKS).where(LOCKS.c.token.in_(tokens), _live(now)))
    return [_lock(row) for row in rows]


async def add(conn: AsyncConnection, lock: Lock, now: datetime) -> None:
    values = {field: getattr(lock, field) for field in Lock.__dataclass_fields__}
    await conn.execute(insert(LOCKS).values(**values, created_at=now))


async def refresh(
    conn: AsyncConnection, token: str, seconds: int | None, until: datetime | None
) -> None:
    await conn.execute(
        update(LOCKS)
        .where(LOCKS.c.token == token)
        .values(timeout_seconds=seconds, expires_at=until)
    )


async def remove(conn: AsyncConnection, token: str) -> None:
    await conn.execute(delete(LOCKS).where(LOCKS.c.token == token))


async def remove_below(conn: AsyncConnection, space_id: str, path: str) -> None:
    """Forget the locks on `path` and below (it was deleted or moved away)."""
    inside = LOCKS.c.path.startswith(path.rstrip("/") + "/", autoescape=True)
    await conn.execute(
        delete(LOCKS).where(LOCKS.c.space_id == space_id, or_(LOCKS.c.path == path, inside))
    )


async def prune(conn: AsyncConnection, now: datetime) -> int:
    result = await conn.execute(delete(LOCKS).where(LOCKS.c.expires_at <= now))
    return int(result.rowcount or 0)
