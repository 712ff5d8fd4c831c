"""The append-only change log. Written in the same transaction as the change it records.

On PostgreSQL, appends take one transaction-scoped advisory lock, so sequence numbers become
visible in commit order: a reader that has seen `seq` N never later finds an N-1 it missed.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from registry.access import rule
from registry.access.principal import PrincipalKey
from registry.changes.events import ChangeEvent
from registry.core.models import ChangeAudience, ChangeRecord, LogHorizon, table

changes = table(ChangeRecord)
audience = table(ChangeAudience)
horizon = table(LogHorizon)

APPEND_LOCK_KEY = 0x5EACE_0001
# Where a `UnitOfWork` collects the changes its transaction logs (in `conn.info`).
LOGGED = "spacereg.changes_logged"


async def append(
    conn: AsyncConnection,
    space_id: str,
    kind: str,
    payload: dict[str, Any],
    now: datetime,
    lost: Sequence[PrincipalKey] = (),
) -> ChangeEvent:
    """Log a change made at `now` in the caller's transaction, which must be a `UnitOfWork`'s:
    its fan-outs (webhook deliveries, ...) then see the change before the transaction commits."""
    logged = conn.info.get(LOGGED)
    if logged is None:
        raise RuntimeError("changes are logged only inside a UnitOfWork transaction")
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": APPEND_LOCK_KEY})
    seq = (
        await conn.execute(
            changes.insert()
            .values(space_id=space_id, kind=kind, payload=payload, created_at=now)
            .returning(changes.c.seq)
        )
    ).scalar_one()
    if lost:
        await conn.execute(
            audience.insert(),
            [{"seq": seq, "principal_type": t, "principal_id": i} for t, i in set(lost)],
        )
    event = ChangeEvent(seq, space_id, kind, payload, now, tuple(lost))
    logged.append(event)
    return event


async def latest(conn: AsyncConnection) -> int:
    found = await conn.execute(select(func.max(changes.c.seq)))
    return int(found.scalar() or 0)


async def pruned_through(conn: AsyncConnection) -> int:
    found = await conn.execute(select(horizon.c.pruned_through).where(horizon.c.log == "changes"))
    return int(found.scalar() or 0)


async def after(conn: AsyncConnection, seq: int, limit: int) -> list[ChangeEvent]:
    """Every change after `seq`, oldest first, with who lost access by it."""
    rows = (
        await conn.execute(
            select(changes).where(changes.c.seq > seq).order_by(changes.c.seq).limit(limit)
        )
    ).all()
    return await _events(conn, rows)


async def latest_of_space(
    conn: AsyncConnection, space_id: str, kinds: Collection[str], limit: int
) -> list[tuple[str, dict[str, Any]]]:
    """The kind and data of a space's latest `limit` changes of these `kinds`, newest first."""
    rows = await conn.execute(
        select(changes.c.kind, changes.c.payload)
        .where(changes.c.space_id == space_id, changes.c.kind.in_(kinds))
        .order_by(changes.c.seq.desc())
        .limit(limit)
    )
    return [(kind, payload) for kind, payload in rows]


async def visible_after(
    conn: AsyncConnection,
    keys: Iterable[PrincipalKey],
    now: datetime,
    since: int,
    upto: int,
    limit: int,
) -> list[ChangeEvent]:
    """Changes in (since, upto] to spaces these principals hold a role in at `now`, or lost
    one in."""
    keys = list(keys)
    lost = select(audience.c.seq).where(
        rule.naming(audience.c.principal_type, audience.c.principal_id, keys),
        audience.c.seq > since,
    )
    statement = (
        select(changes)
        .where(
            changes.c.seq > since,
            changes.c.seq <= upto,
            or_(changes.c.space_id.in_(rule.spaces_held(keys, now)), changes.c.seq.in_(lost)),
        )
        .order_by(changes.c.seq)
        .limit(limit)
    )
    rows = (await conn.execute(statement)).all()
    return await _events(conn, rows)


async def prune(conn: AsyncConnection, older_than: datetime) -> int:
    """Drop changes older than `older_than`, always keeping the newest one (SQLite would
    otherwise reuse its number); returns how many went."""
    newest = await latest(conn)
    through = (
        await conn.execute(
            select(func.max(changes.c.seq)).where(
                changes.c.created_at < older_than, changes.c.seq < newest
            )
        )
    ).scalar()
    if through is None:
        return 0
    await conn.execute(delete(audience).where(audience.c.seq <= through))
    gone = await conn.execute(delete(changes).where(changes.c.seq <= through))
    updated = await conn.execute(
        horizon.update().where(horizon.c.log == "changes").values(pruned_through=through)
    )
    if not updated.rowcount:
        await conn.execute(horizon.insert().values(log="changes", pruned_through=through))
    return int(gone.rowcount or 0)


async def _events(conn: AsyncConnection, rows: Sequence[Any]) -> list[ChangeEvent]:
    if not rows:
        return []
    seqs = [row.seq for row in rows]
    lost: dict[int, list[PrincipalKey]] = {}
    found = await conn.execute(
        select(audience).where(audience.c.seq >= seqs[0], audience.c.seq <= seqs[-1])
    )
    for entry in found:
        lost.setdefault(entry.seq, []).append(
            PrincipalKey(entry.principal_type, entry.principal_id)
        )
    return [
        ChangeEvent(
            row.seq,
            row.space_id,
            row.kind,
            row.payload,
            row.created_at,
            tuple(lost.get(row.seq, ())),
        )
        for row in rows
    ]
