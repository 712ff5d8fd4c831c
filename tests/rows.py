"""Counting a table's rows from a test."""

from __future__ import annotations

from sqlalchemy import func, select

from registry.core.models import Base
from registry.runtime.db import create_engine
from tests.conftest import Registry


async def rows_of(registry: Registry, model: type[Base]) -> int:
    """Rows in a table, read with an engine of this test's own (the server's is bound to the
    server's event loop, which asyncpg holds it to)."""
    engine = create_engine(registry.settings.database_url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(model))).scalar_one())
    finally:
        await engine.dispose()
