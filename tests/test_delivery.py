"""The delivery worker dispatches each claimed outbox row to the sender of its kind; rows of a
kind it has no sender for are left alone, not claimed again and again."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from federation.webhooks import DeliveryFailed
from registry.core.models import Destination, OutboxEntry, table
from registry.outbox.delivery import DeliveryWorker
from registry.outbox.senders import Send
from registry.outbox.store import Delivery
from registry.runtime.db import create_engine
from registry.runtime.migrate import upgrade
from tests.clock import FakeClock

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
outbox = table(OutboxEntry)


class Recorder:
    """A sender that records what it was asked to send, failing for the origins in `down`."""

    def __init__(self, down: frozenset[str] = frozenset()) -> None:
        self.batches: list[list[str]] = []
        self.sent: list[tuple[str, datetime]] = []
        self.down = down

    async def prepare(self, conn: AsyncConnection, batch: Sequence[Delivery]) -> Send:
        self.batches.append([d.event_id for d in batch])

        async def send(delivery: Delivery, now: datetime) -> None:
            if delivery.origin in self.down:
                raise DeliveryFailed(f"{delivery.origin} answered HTTP 503")
            self.sent.append((delivery.event_id, now))

        return send


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}")
    await upgrade(engine)
    try:
        yield engine
    finally:
        await engine.dispose()


async def queue(engine: AsyncEngine, kind: str, event_id: str, origin: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            outbox.insert().values(
                kind=kind,
                event_id=event_id,
                destination=f"{origin}/inbox",
                origin=origin,
                payload={"id": event_id},
                state="pending",
                attempts=0,
                next_attempt_at=NOW,
                created_at=NOW,
            )
        )


async def rows(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as conn:
        return {row.event_id: row for row in await conn.execute(select(outbox))}


async def test_each_kind_goes_to_its_own_sender(engine: AsyncEngine) -> None:
    webhooks, peers = Recorder(), Recorder()
    worker = DeliveryWorker(
        engine, {"webhook": webhooks, "peer": peers}, timedelta(days=1), clock=FakeClock(NOW)
    )
    await queue(engine, "webhook", "1", "https://hooks.example")
    await queue(engine, "peer", "2", "https://paris.example")
    await queue(engine, "webhook", "3", "https://hooks.example")

    assert await worker.send_due() == 3

    assert webhooks.batches == [["1", "3"]] and peers.batches == [["2"]]
    assert webhooks.sent == [("1", NOW), ("3", NOW)] and peers.sent == [("2", NOW)]
    assert {r.state for r in (await rows(engine)).values()} == {"delivered"}


async def test_rows_of_a_kind_without_a_sender_are_left_unclaimed(engine: AsyncEngine) -> None:
    webhooks = Recorder()
    worker = DeliveryWorker(engine, {"webhook": webhooks}, timedelta(days=1), clock=FakeClock(NOW))
    await queue(engine, "peer", "1", "https://paris.example")
    await queue(engine, "webhook", "2", "https://hooks.example")

    assert await worker.send_due() == 1
    assert await worker.send_due() == 0  # nothing left that this worker can send

    found = await rows(engine)
    assert webhooks.sent == [("2", NOW)] and found["2"].state == "delivered"
    peer = found["1"]
    assert (peer.state, peer.attempts, peer.claimed_until, peer.last_error) == (
        "pending",
        0,
        None,
        None,
    )


async def test_a_failing_destination_backs_off_without_holding_up_others(
    engine: AsyncEngine,
) -> None:
    webhooks = Recorder(down=frozenset({"https://down.example"}))
    worker = DeliveryWorker(engine, {"webhook": webhooks}, timedelta(days=1), clock=FakeClock(NOW))
    await queue(engine, "webhook", "1", "https://down.example")
    await queue(engine, "webhook", "2", "https://down.example")
    await queue(engine, "webhook", "3", "https://up.example")

    assert await worker.send_due() == 3
    assert await worker.send_due() == 0  # the failed destination waits for its retry time

    found = await rows(engine)
    assert webhooks.sent == [("3", NOW)]
    assert [(found[i].state, found[i].attempts) for i in "12"] == [("pending", 1)] * 2
    assert found["1"].next_attempt_at > NOW
    async with engine.connect() as conn:
        [destination] = (await conn.execute(select(table(Destination)))).all()
    assert (destination.origin, destination.failures) == ("https://down.example", 1)
    assert "503" in destination.last_error
