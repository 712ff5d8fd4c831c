"""SQLite runs the way the registry relies on: WAL, foreign keys, a wait instead of 'locked'."""

from sqlalchemy import text

from registry.runtime.db import create_engine


async def test_sqlite_uses_wal_and_enforces_foreign_keys(tmp_path):
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'nested' / 'x.db'}")
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
            assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar() == 30000
    finally:
        await engine.dispose()
    assert (tmp_path / "nested" / "x.db").exists()
