"""The delivery outbox: rows written with the change that causes them, claimed by one sender.
Each row has a `kind` (`webhook`, `peer`), and only kinds this process can send are claimed.

A claim is a lease (`claimed_until`), not a held lock: a sender that dies mid-send loses its
claim when the lease runs out, and another sender (or the same one restarted) sends again.
Receivers drop the repeat by event id.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from registry.access import rule
from registry.access.principal import PrincipalKey, principal_keys
from registry.changes.events import ChangeEvent
from registry.core.models import (
    Destination,
    Member,
    OutboxEntry,
    Subscription,
    SubscriptionDrive,
    table,
)
from registry.core.unique import insert_once

outbox = table(OutboxEntry)
destinations = table(Destination)
subscriptions = table(Subscription)
subscription_drives = table(SubscriptionDrive)
members = table(Member)

WEBHOOK = "webhook"
PEER = "peer"
# A notice about the partnership itself (suspended, resumed, revoked): sent like `peer`, but
# also to a paused destination, since it is what tells the partner why it is paused.
PEER_NOTICE = "peer-notice"


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    kind: str
    event_id: str  # the receiver's idempotency key
    subscription_id: str | None  # set for webhooks
    destination: str
    origin: str
    payload: dict[str, Any]
    attempts: int
    created_at: datetime


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


async def queue_webhooks(conn: AsyncConnection, events: Sequence[ChangeEvent]) -> None:
    """The outbox's fan-out (see `UnitOfWork`): queue each change for every live webhook whose
    owner may see the space, in the transaction that logged it."""
    for event in events:
        await _queue_for_webhooks(conn, event)


async def _queue_for_webhooks(conn: AsyncConnection, event: ChangeEvent) -> None:
    listed = select(subscription_drives.c.subscription_id).where(
        subscription_drives.c.space_id == event.space_id
    )
    found = (
        await conn.execute(
            select(subscriptions).where(
                subscriptions.c.expires_at > event.time,
                or_(subscriptions.c.all_drives, subscriptions.c.id.in_(listed)),
            )
        )
    ).all()
    if not found:
        return
    holders = await _holders(conn, event, found)
    lost = set(event.lost)
    change = event.json()
    rows = []
    for sub in found:
        keys = _keys(sub)
        if keys & holders or keys & lost:
            rows.append(
                {
                    "kind": WEBHOOK,
                    "event_id": str(event.seq),
                    "subscription_id": sub.id,
                    "destination": sub.callback_url,
                    "origin": origin_of(sub.callback_url),
                    "payload": {**change, "subscriptionId": sub.id},
                    "state": "pending",
                    "attempts": 0,
                    "next_attempt_at": event.time,
                    "created_at": event.time,
                }
            )
    if rows:
        await conn.execute(outbox.insert(), rows)


async def queue_peer(
    conn: AsyncConnection,
    event_id: str,
    destination: str,
    payload: dict[str, Any],
    now: datetime,
    *,
    kind: str = PEER,
) -> bool:
    """Queue a message to another registry (signed by `PeerSender` when it is sent), which
    receives `event_id` as its message id. Queuing one id to one destination again is a
    no-op (a unique index): returns False then."""
    row = {
        "kind": kind,
        "event_id": event_id,
        "destination": destination,
        "origin": origin_of(destination),
        "payload": payload,
        "state": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }
    return await insert_once(conn, outbox, row)


async def _holders(
    conn: AsyncConnection, event: ChangeEvent, found: Sequence[Any]
) -> set[tuple[str, str]]:
    """Which of the subscribers' principals hold a live role in the space."""
    keys = {key for sub in found for key in _keys(sub)}
    rows = await conn.execute(
        select(members.c.principal_type, members.c.principal_id).where(
            members.c.space_id == event.space_id, rule.holding(keys, event.time)
        )
    )
    return {(row.principal_type, row.principal_id) for row in rows}


def _keys(subscription: Any) -> frozenset[PrincipalKey]:
    return principal_keys(subscription.owner_id, tuple(subscription.owner_groups))


async def claim(
    conn: AsyncConnection,
    now: datetime,
    lease: timedelta,
    limit: int,
    kinds: Collection[str],
    busy: Collection[str] = (),
) -> list[Delivery]:
    """Take up to `limit` due deliveries of `kinds` whose destination is not backing off, not
    `busy` (sent by this process now) and whose circuit is closed; and of each destination
    whose open circuit is due for a probe, its first delivery alone (the probe, leased on the
    destination so no other replica probes meanwhile). A paused destination's `peer` rows
    wait. Rows of other kinds stay pending, untouched, for a process that can send them."""
    held = select(destinations.c.origin).where(
        or_(destinations.c.retry_at > now, destinations.c.opened_at.is_not(None))
    )
    paused = select(destinations.c.origin).where(destinations.c.paused)
    pending = and_(
        outbox.c.state == "pending",
        outbox.c.kind.in_(kinds),
        outbox.c.next_attempt_at <= now,
        or_(outbox.c.claimed_until.is_(None), outbox.c.claimed_until < now),
        outbox.c.origin.not_in(busy),
        or_(outbox.c.kind != PEER, outbox.c.origin.not_in(paused)),
    )
    due = (
        select(outbox.c.id)
        .where(pending, outbox.c.origin.not_in(held))
        .order_by(outbox.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list((await conn.execute(due)).scalars())
    ids += await _probes(conn, now, lease, pending)
    if not ids:
        return []
    await conn.execute(update(outbox).where(outbox.c.id.in_(ids)).values(claimed_until=now + lease))
    rows = await conn.execute(select(outbox).where(outbox.c.id.in_(ids)).order_by(outbox.c.id))
    return [
        Delivery(
            row.id,
            row.kind,
            row.event_id,
            row.subscription_id,
            row.destination,
            row.origin,
            row.payload,
            row.attempts,
            row.created_at,
        )
        for row in rows
    ]


async def _probes(
    conn: AsyncConnection, now: datetime, lease: timedelta, pending: Any
) -> list[int]:
    """The first pending delivery of each open circuit due for its probe; leases the probe."""
    due = (
        select(destinations.c.origin)
        .where(
            destinations.c.opened_at.is_not(None),
            destinations.c.retry_at <= now,
            or_(destinations.c.probe_until.is_(None), destinations.c.probe_until < now),
        )
        .with_for_update(skip_locked=True)
    )
    origins = list((await conn.execute(due)).scalars())
    if not origins:
        return []
    firsts = await conn.execute(
        select(outbox.c.origin, func.min(outbox.c.id))
        .where(pending, outbox.c.origin.in_(origins))
        .group_by(outbox.c.origin)
    )
    probes = {origin: int(first) for origin, first in firsts}
    if probes:
        await conn.execute(
            update(destinations)
            .where(destinations.c.origin.in_(list(probes)))
            .values(probe_until=now + lease)
        )
    return list(probes.values())


async def delivered(conn: AsyncConnection, ids: list[int], origin: str, now: datetime) -> None:
    await conn.execute(
        update(outbox)
        .where(outbox.c.id.in_(ids))
        .values(state="delivered", done_at=now, claimed_until=None)
    )
    await conn.execute(
        update(destinations)
        .where(destinations.c.origin == origin)
        .values(failures=0, retry_at=None, last_error=None, opened_at=None, probe_until=None)
    )


async def failed(
    conn: AsyncConnection,
    ids: list[int],
    origin: str,
    error: str,
    now: datetime,
    backoff: Callable[[int], timedelta],
    opens_after: int,
) -> datetime:
    """Record a failed attempt on the deliveries and on their destination, whose next try
    waits `backoff(failures in a row)`; its circuit opens at `opens_after` failures in a row
    (and stays open until a probe succeeds). Returns when the next try is."""
    found = (
        await conn.execute(
            select(destinations.c.failures, destinations.c.opened_at)
            .where(destinations.c.origin == origin)
            .with_for_update()
        )
    ).first()
    failures = (found.failures if found else 0) + 1
    retry_at = now + backoff(failures)
    opened = found.opened_at if found else None
    values = {
        "failures": failures,
        "retry_at": retry_at,
        "last_error": error,
        "probe_until": None,
        "opened_at": opened or (now if failures >= opens_after else None),
    }
    if found is None:
        await conn.execute(destinations.insert().values(origin=origin, **values))
    else:
        await conn.execute(
            update(destinations).where(destinations.c.origin == origin).values(**values)
        )
    await conn.execute(
        update(outbox)
        .where(outbox.c.id.in_(ids))
        .values(
            attempts=outbox.c.attempts + 1,
            last_error=error,
            next_attempt_at=retry_at,
            claimed_until=None,
        )
    )
    return retry_at


async def give_up(conn: AsyncConnection, ids: list[int], reason: str, now: datetime) -> None:
    await conn.execute(
        update(outbox)
        .where(outbox.c.id.in_(ids))
        .values(state="failed", last_error=reason, done_at=now, claimed_until=None)
    )


@dataclass(frozen=True)
class Backlog:
    """What waits for one destination, and why."""

    queued: int = 0
    failures: int = 0  # in a row
    retry_at: datetime | None = None
    circuit_open: bool = False
    paused: bool = False
    last_error: str | None = None


async def backlog(conn: AsyncConnection, origins: Collection[str]) -> dict[str, Backlog]:
    """The deliveries pending for each of `origins` and the state of its destination."""
    queued: dict[str, int] = dict(
        (
            await conn.execute(
                select(outbox.c.origin, func.count())
                .where(outbox.c.state == "pending", outbox.c.origin.in_(origins))
                .group_by(outbox.c.origin)
            )
        ).all()
    )
    found = {
        row.origin: row
        for row in await conn.execute(
            select(destinations).where(destinations.c.origin.in_(origins))
        )
    }
    result = {}
    for origin in origins:
        row = found.get(origin)
        count = int(queued.get(origin, 0))
        result[origin] = (
            Backlog(count)
            if row is None
            else Backlog(
                count,
                row.failures,
                row.retry_at,
                row.opened_at is not None,
                bool(row.paused),
                row.last_error,
            )
        )
    return result


async def pause(conn: AsyncConnection, origin: str, paused: bool) -> None:
    """Hold (or let go) the `peer` deliveries to `origin`; notices still go."""
    done = await conn.execute(
        update(destinations).where(destinations.c.origin == origin).values(paused=paused)
    )
    if done.rowcount == 0 and paused:
        await conn.execute(destinations.insert().values(origin=origin, failures=0, paused=True))


async def drop_queued(conn: AsyncConnection, origin: str, reason: str, now: datetime) -> int:
    """Give up every pending `peer` delivery to `origin` (the partnership ended)."""
    gone = await conn.execute(
        update(outbox)
        .where(outbox.c.state == "pending", outbox.c.kind == PEER, outbox.c.origin == origin)
        .values(state="failed", last_error=reason, done_at=now, claimed_until=None)
    )
    return int(gone.rowcount or 0)


async def prune(conn: AsyncConnection, older_than: datetime) -> int:
    """Forget finished deliveries (sent, or given up on) older than `older_than`."""
    gone = await conn.execute(
        delete(outbox).where(outbox.c.state != "pending", outbox.c.done_at < older_than)
    )
    return int(gone.rowcount or 0)
