"""Failed sign-ins at the embedded IdP, counted per username and per client address in the
database, so that every replica refuses the same guesses.

Each attempt is counted before its password is checked (so that many at once cannot slip past
the count), and a success takes it back. After `USER_FAILURES` failures in a row for a username,
or `ADDRESS_FAILURES` from one address (IPv6: one /64), further attempts are refused until a lock
lapses: `FIRST_LOCK`, doubled with each failure after it, at most `LONGEST_LOCK`. A streak is
forgotten `STREAK_FORGOTTEN_AFTER` its last failure. Unknown usernames are counted like known
ones, so the throttle tells nothing of who exists.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from datetime import datetime, timedelta

from sqlalchemy import case, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from registry.core.clock import Clock
from registry.core.models import LoginFailure, table

USER_FAILURES = 5
ADDRESS_FAILURES = 20  # many people may sign in from behind one NAT
FIRST_LOCK = timedelta(minutes=1)
LONGEST_LOCK = timedelta(minutes=15)
STREAK_FORGOTTEN_AFTER = timedelta(hours=1)

failures = table(LoginFailure)


class LoginThrottle:
    def __init__(self, engine: AsyncEngine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    async def admit(self, username: str, address: str | None) -> int | None:
        """Count an attempt to sign in as `username` from `address`. None: go on, check the
        password and report a success; else the seconds to wait (and nothing is counted)."""
        now = self._clock.now()
        async with self._engine.connect() as conn:
            transaction = await conn.begin()
            for key, limit in _keys(username, address):
                count = await _count(conn, key, now)
                if count is None:
                    until = await _locked_until(conn, key)
                    await transaction.rollback()
                    return max(1, math.ceil((until - now).total_seconds()))
                if count >= limit:
                    lock = min(FIRST_LOCK * 2 ** min(count - limit, 16), LONGEST_LOCK)
                    locking = update(failures).where(failures.c.key == key)
                    await conn.execute(locking.values(locked_until=now + lock))
            await transaction.commit()
        return None

    async def succeeded(self, username: str, address: str | None) -> None:
        """The attempt `admit` counted was no failure: the username's streak ends, and the
        address gets its attempt back."""
        (address_key, _), (user_key, _) = _keys(username, address)
        still_failing = failures.c.failures - 1 >= ADDRESS_FAILURES
        async with self._engine.begin() as conn:  # rows in the order `admit` locks them
            await conn.execute(
                update(failures)
                .where(failures.c.key == address_key)
                .values(
                    failures=failures.c.failures - 1,
                    locked_until=case((still_failing, failures.c.locked_until), else_=None),
                )
            )
            await conn.execute(delete(failures).where(failures.c.key == user_key))


async def prune(conn: AsyncConnection, now: datetime) -> int:
    """Forget streaks whose last failure is older than `STREAK_FORGOTTEN_AFTER`."""
    gone = await conn.execute(
        delete(failures).where(failures.c.last_failure_at <= now - STREAK_FORGOTTEN_AFTER)
    )
    return int(gone.rowcount or 0)


def _keys(username: str, address: str | None) -> list[tuple[str, int]]:
    """The counters an attempt counts on, with their limits, always in this order. Usernames
    by digest, so that any name fits."""
    digest = hashlib.sha256(username.encode("utf-8", "surrogatepass")).hexdigest()
    return [(f"address:{_network(address)}", ADDRESS_FAILURES), (f"user:{digest}", USER_FAILURES)]


def _network(address: str | None) -> str:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return (address or "unknown")[:64]  # not an IP address: a Unix socket, a test client
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


async def _count(conn: AsyncConnection, key: str, now: datetime) -> int | None:
    """One more failure on `key` (the first of a new streak if the last one is forgotten);
    the failures in a row, or None if `key` is locked at `now` (then nothing changes)."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    forgotten = failures.c.last_failure_at <= now - STREAK_FORGOTTEN_AFTER
    statement = (
        insert(failures)
        .values(key=key, failures=1, last_failure_at=now)
        .on_conflict_do_update(
            index_elements=[failures.c.key],
            set_={
                "failures": case((forgotten, 1), else_=failures.c.failures + 1),
                "last_failure_at": now,
            },
            where=or_(failures.c.locked_until.is_(None), failures.c.locked_until <= now),
        )
        .returning(failures.c.failures)
    )
    count = (await conn.execute(statement)).scalar()
    return None if count is None else int(count)


async def _locked_until(conn: AsyncConnection, key: str) -> datetime:
    until = (
        await conn.execute(select(failures.c.locked_until).where(failures.c.key == key))
    ).scalar_one()
    assert isinstance(until, datetime)  # the upsert found it locked
    return until
