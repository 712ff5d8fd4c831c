"""Alembic environment: runs on a connection the caller hands over (see registry/migrate.py),
or, when started by the `alembic` command, on an engine built from `sqlalchemy.url`."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from registry.core.models import Base
from registry.runtime.db import create_engine

config = context.config
target_metadata = Base.metadata


def run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_with_own_engine() -> None:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    async with engine.begin() as connection:
        await connection.run_sync(run_on)
    await engine.dispose()


connection = config.attributes.get("connection")
if connection is not None:
    run_on(connection)
else:
    asyncio.run(run_with_own_engine())
