"""Insert a row unless its unique key is taken: the atomic "first one wins" every replica
agrees on (a replay cache, a message id, a queued message)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["insert_once"]


async def insert_once(conn: AsyncConnection, table: Table, values: dict[str, Any]) -> bool:
    """Insert `values` into `table`; False, and nothing written, if a unique key holds them
    already. A savepoint keeps the caller's transaction usable after the conflict."""
    try:
        async with conn.begin_nested():
            await conn.execute(table.insert().values(values))
    except IntegrityError:
        return False
    return True
