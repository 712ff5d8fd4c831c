"""Our subscriptions at peers (`registry/shares/renewals.py`) on SQLite and PostgreSQL, on a
fake clock: two recipients of one remote space share one subscription and one renewal; a lease
run out with no renewal delivered marks both mountpoints unavailable, a renewal delivered marks
them available again and moves the lease on, each a logged change; a revoked peer's
mountpoints turn unavailable; only the last share to leave cancels. No peer runs here: the
outbox rows are marked delivered as the delivery worker would (tests/federation/
test_subscription_faults.py sends them to a real peer)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from registry.changes.log import changes
from registry.changes.unit_of_work import UnitOfWork
from registry.outbox import store as outbox
from registry.shares import renewals, store
from registry.shares.renewals import Renewals
from registry.shares.subscriptions import LEASE, SUBSCRIPTIONS_PATH
from registry.spaces import store as spaces_store
from registry.spaces.store import spaces
from tests.clock import START, FakeClock
from tests.databases import database_url, migrated_engine

__all__ = ["database_url"]  # a fixture

ZURICH = "https://registry.zurich.test"
WEBDAV_URI = f"{ZURICH}/dav/spaces/0123"


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    async with migrated_engine(database_url) as engine:
        async with engine.begin() as conn:
            await conn.execute(
                store.peers.insert().values(
                    id="p1", domain="zurich.test", base_url=ZURICH, created_at=START
                )
            )
            for n in (1, 2):
                await conn.execute(
                    store.users.insert().values(
                        id=f"u{n}",
                        issuer="https://idp.paris.test",
                        subject=f"user{n}",
                        username=f"user{n}",
                        display_name=f"User {n}",
                        created_at=START,
                    )
                )
                await spaces_store.insert(conn, mountpoint(n), START)
                await store.add_incoming(conn, incoming_share(n), START)
        yield engine


def mountpoint(n: int) -> dict[str, Any]:
    return {
        "id": f"m{n}",
        "alias": f"mountpoint/m{n}",
        "name": "Shared",
        "drive_type": "mountpoint",
        "provider": "",
        "root_id": f"m{n}!m{n}",
        "etag": "",
        "remote_peer_id": "p1",
        "remote_url": WEBDAV_URI,
    }


def incoming_share(n: int) -> dict[str, Any]:
    return {
        "id": f"s{n}",
        "provider_id": f"provider-{n}",
        "sender": "einstein@zurich.test",
        "owner": "einstein@zurich.test",
        "sender_name": "Einstein",
        "owner_name": "Einstein",
        "peer_domain": "zurich.test",
        "ocm_endpoint": f"{ZURICH}/ocm",
        "user_id": f"u{n}",
        "name": "Shared",
        "resource_type": "folder",
        "role": "editor",
        "webdav_uri": WEBDAV_URI,
        "secret": f"secret-{n}",
        "state": store.ACCEPTED,
        "mountpoint_id": f"m{n}",
    }


async def sent(engine: AsyncEngine) -> list[Any]:
    """Our subscription messages, oldest first."""
    async with engine.connect() as conn:
        found = select(outbox.outbox).where(
            outbox.outbox.c.destination.endswith(SUBSCRIPTIONS_PATH)
        )
        return list((await conn.execute(found.order_by(outbox.outbox.c.id))).all())


async def deliver_all(engine: AsyncEngine, clock: FakeClock) -> None:
    """What the delivery worker does once the peer answered each pending message."""
    pending = [row.id for row in await sent(engine) if row.state == "pending"]
    async with engine.begin() as conn:
        await outbox.delivered(conn, pending, ZURICH, clock.now())


async def states(engine: AsyncEngine) -> dict[str, str]:
    async with engine.connect() as conn:
        found = select(spaces.c.id, spaces.c.availability).where(spaces.c.id.in_(["m1", "m2"]))
        return {space_id: state for space_id, state in await conn.execute(found)}


async def logged(engine: AsyncEngine) -> list[tuple[str, str]]:
    async with engine.connect() as conn:
        found = select(changes).where(changes.c.kind == "availability").order_by(changes.c.seq)
        return [(row.space_id, row.payload["availability"]) for row in await conn.execute(found)]


async def the_subscription(engine: AsyncEngine) -> Any:
    async with engine.connect() as conn:
        return await store.remote_subscription(conn, "zurich.test", WEBDAV_URI)


async def test_one_renewal_for_two_recipients_and_availability_follows_the_lease(
    engine: AsyncEngine,
) -> None:
    clock, unit_of_work = FakeClock(), UnitOfWork(engine)
    job = Renewals(unit_of_work.begin, "paris.test", clock, wake=lambda: None)
    async with unit_of_work.begin() as conn:
        for n in (1, 2):
            share = await store.incoming_by_id(conn, f"s{n}")
            await renewals.subscribe(conn, share, "paris.test", clock.now())
    assert [row.payload["action"] for row in await sent(engine)] == ["subscribe"]
    assert await job.check() == 0

    clock.advance(timedelta(seconds=1))
    await deliver_all(engine, clock)
    assert await job.check() == 0
    row = await the_subscription(engine)
    assert (row.renewal_id, row.lease_until) == (None, clock.now() + LEASE)

    clock.advance(LEASE / 2)
    assert await job.check() == 1  # one renewal for both
    assert await job.check() == 0
    clock.advance(LEASE / 2 + timedelta(seconds=1))  # the renewal never got through
    await job.check()
    assert await states(engine) == {"m1": "unavailable", "m2": "unavailable"}
    await job.check()  # a lapse is logged once
    assert sorted(await logged(engine)) == [("m1", "unavailable"), ("m2", "unavailable")]
    assert (await the_subscription(engine)).lapsed

    await deliver_all(engine, clock)  # zurich answers again
    await job.check()
    assert await states(engine) == {"m1": "available", "m2": "available"}
    assert len(await logged(engine)) == 4
    row = await the_subscription(engine)
    assert not row.lapsed and row.lease_until == clock.now() + LEASE

    async with engine.begin() as conn:
        await conn.execute(update(store.peers).values(status="revoked"))
    await job.check()
    assert await states(engine) == {"m1": "unavailable", "m2": "unavailable"}


async def test_only_the_last_share_of_a_space_to_leave_cancels(engine: AsyncEngine) -> None:
    clock, unit_of_work = FakeClock(), UnitOfWork(engine)
    async with unit_of_work.begin() as conn:
        first = await store.incoming_by_id(conn, "s1")
        await renewals.subscribe(conn, first, "paris.test", clock.now())
    for n in (1, 2):
        async with unit_of_work.begin() as conn:
            share = await store.incoming_by_id(conn, f"s{n}")
            await store.set_incoming(conn, share.id, {"state": store.DECLINED}, clock.now())
            await renewals.leave(conn, share, "paris.test", clock.now(), cancel=True)
        left = await the_subscription(engine)
        assert (left is None) == (n == 2)
    assert [row.payload["action"] for row in await sent(engine)] == ["subscribe", "cancel"]
    assert (await sent(engine))[-1].payload["providerId"] == "provider-2"
