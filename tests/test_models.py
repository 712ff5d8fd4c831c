"""Column types of the registry's tables, on a real database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import Column, Integer, MetaData, Table, select

from registry.core.models import UtcDateTime
from registry.runtime.db import create_engine


async def test_moments_are_stored_in_utc_and_read_back_aware(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'moments.db'}")
    moments = Table(
        "moments", MetaData(), Column("id", Integer, primary_key=True), Column("at", UtcDateTime)
    )
    noon_in_paris = datetime(2030, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    try:
        async with engine.begin() as conn:
            await conn.run_sync(moments.metadata.create_all)
            await conn.execute(moments.insert(), [{"id": 1, "at": noon_in_paris}])
            found = (await conn.execute(select(moments.c.at))).scalar_one()
            later = await conn.execute(
                select(moments.c.id).where(moments.c.at > datetime(2030, 1, 1, 11, tzinfo=UTC))
            )
    finally:
        await engine.dispose()
    assert found == datetime(2030, 1, 1, 10, 0, tzinfo=UTC)
    assert found.tzinfo is not None
    assert later.all() == []  # 10:00Z is not after 11:00Z, although the wall clock said 12:00
