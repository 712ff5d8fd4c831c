"""The delivery worker dispatches each claimed outbox row to the sender of its kind; rows of a
kind it has no sender for are left alone, not claimed again and again. Each destination is its
own queue (one that hangs holds up no other), its circuit opens after failures in a row and
only a successful probe closes it, and a paused destination holds peer messages."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from common.waiting import set_within
from federation.webhooks import DeliveryFailed
from registry.core.models import Destination, OutboxEntry, table
from registry.outbox import delivery, store
from registry.outbox.delivery import CIRCUIT_OPENS_AFTER, DeliveryWorker
from registry.outbox.senders import Send
from registry.outbox.store import Delivery
from tests.clock import FakeClock
from tests.databases import migrated_engine, sqlite_url
from tests.waiting import eventually

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
    async with migrated_engine(sqlite_url(tmp_path)) as engine:
        yield engine


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


class Hanging(Recorder):
    """A sender whose sends to `hung` wait until `release` is set (a peer that never answers)."""

    def __init__(self, hung: str) -> None:
        super().__init__()
        self.hung = hung
        self.release = asyncio.Event()
        self.cleaned_up = False

    async def prepare(self, conn: AsyncConnection, batch: Sequence[Delivery]) -> Send:
        record = await super().prepare(conn, batch)

        async def send(delivery: Delivery, now: datetime) -> None:
            if delivery.origin == self.hung:
                try:
                    await self.release.wait()
                except asyncio.CancelledError:
                    await asyncio.sleep(0.05)  # cleaning up takes a while
                    self.cleaned_up = True
                    raise
            await record(delivery, now)

        return send


async def sent_soon(sender: Recorder, event_id: str) -> bool:
    for _attempt in range(200):
        if event_id in [sent for sent, _at in sender.sent]:
            return True
        await asyncio.sleep(0.01)
    return False


async def test_a_peer_that_hangs_delays_no_other_even_in_one_claimed_batch(
    engine: AsyncEngine,
) -> None:
    peers = Hanging("https://hung.example")
    worker = DeliveryWorker(engine, {"peer": peers}, timedelta(days=1), clock=FakeClock(NOW))
    await queue(engine, "peer", "1", "https://hung.example")
    await queue(engine, "peer", "2", "https://paris.example")
    running = asyncio.create_task(worker.run())
    try:
        assert await sent_soon(peers, "2")  # claimed in one batch with "1", sent meanwhile
        await queue(engine, "peer", "3", "https://paris.example")
        await queue(engine, "peer", "4", "https://hung.example")
        worker.wake()
        assert await sent_soon(peers, "3")  # a later one too, while "1" still hangs
        assert [sent for sent, _at in peers.sent] == ["2", "3"]
        assert peers.batches == [["1", "2"], ["3"]]  # "4" waits for its destination's queue

        peers.release.set()
        assert await sent_soon(peers, "4")
        assert [sent for sent, _at in peers.sent] == ["2", "3", "1", "4"]
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running


async def test_a_worker_woken_as_it_is_cancelled_stops(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    waiting = asyncio.Event()

    async def noted(event: asyncio.Event, seconds: float | None) -> bool:
        waiting.set()
        return await set_within(event, seconds)

    monkeypatch.setattr(delivery, "set_within", noted)
    worker = DeliveryWorker(engine, {"peer": Recorder()}, timedelta(days=1), clock=FakeClock(NOW))
    running = asyncio.create_task(worker.run())
    await asyncio.wait_for(waiting.wait(), 5)  # it found nothing due and waits
    worker.wake()
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(running, 5)


async def test_a_cancelled_worker_ends_only_after_its_sends_have(engine: AsyncEngine) -> None:
    peers = Hanging("https://hung.example")
    worker = DeliveryWorker(engine, {"peer": peers}, timedelta(days=1), clock=FakeClock(NOW))
    await queue(engine, "peer", "1", "https://hung.example")
    running = asyncio.create_task(worker.run())
    assert await eventually(lambda: peers.batches == [["1"]])
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(running, 5)
    assert peers.cleaned_up  # the send, cancelled, ended (as a rollback would) before the worker


async def test_an_open_circuit_sends_one_probe_and_only_its_success_closes_it(
    engine: AsyncEngine,
) -> None:
    clock = FakeClock(NOW)
    peers = Recorder(down=frozenset({"https://down.example"}))
    worker = DeliveryWorker(engine, {"peer": peers}, timedelta(days=1), clock=clock)
    for n in range(3):
        await queue(engine, "peer", str(n), "https://down.example")
    for _failure in range(CIRCUIT_OPENS_AFTER):
        assert await worker.send_due() == 3  # the queue, stopped at its first failure
        clock.advance(timedelta(hours=5))
    assert (await destination_row(engine)).opened_at is not None

    assert await worker.send_due() == 1  # open: the first message alone, as a probe
    assert (await destination_row(engine)).opened_at is not None  # it failed: still open
    assert await worker.send_due() == 0  # and nothing until the next retry time

    clock.advance(timedelta(hours=5))
    peers.down = frozenset()
    assert await worker.send_due() == 1  # the probe succeeds...
    found = await destination_row(engine)
    assert (found.opened_at, found.failures) == (None, 0)  # ...and closes the circuit
    assert await worker.send_due() == 2
    assert [sent for sent, _at in peers.sent] == ["0", "1", "2"]


async def destination_row(engine: AsyncEngine) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(select(table(Destination)))).one()


async def test_a_paused_destination_holds_peer_messages_but_lets_notices_go(
    engine: AsyncEngine,
) -> None:
    peers = Recorder()
    worker = DeliveryWorker(
        engine, {"peer": peers, "peer-notice": peers}, timedelta(days=1), clock=FakeClock(NOW)
    )
    await queue(engine, "peer", "message", "https://paris.example")
    await queue(engine, "peer-notice", "notice", "https://paris.example")
    async with engine.begin() as conn:
        await store.pause(conn, "https://paris.example", True)

    assert await worker.send_due() == 1
    assert peers.sent == [("notice", NOW)]

    async with engine.begin() as conn:
        await store.pause(conn, "https://paris.example", False)
    assert await worker.send_due() == 1
    assert peers.sent[-1] == ("message", NOW)


async def test_a_message_queued_twice_for_one_peer_is_queued_once(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        first = await store.queue_peer(conn, "m1", "https://paris.example/in", {"n": 1}, NOW)
        again = await store.queue_peer(conn, "m1", "https://paris.example/in", {"n": 2}, NOW)
        elsewhere = await store.queue_peer(conn, "m1", "https://lyon.example/in", {"n": 3}, NOW)

    assert (first, again, elsewhere) == (True, False, True)
    found = await rows(engine)
    assert found["m1"].payload in ({"n": 1}, {"n": 3}) and len(found) == 1  # by event id
    async with engine.connect() as conn:
        assert len((await conn.execute(select(outbox))).all()) == 2
