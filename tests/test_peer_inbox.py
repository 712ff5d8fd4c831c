"""The idempotent inbox of peers' messages on SQLite and PostgreSQL: a repeat is answered as the
first delivery was (an answer or a refusal) without being handled again, also when two
replicas receive one message at the same moment; a crash is not an answer; ids are kept a
day and then pruned. The HTTP side (signed notices with `Idempotency-Key`) is in
tests/federation/test_peering.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from federation.config import DiscoveryConfig
from federation.peer_keys import PeerKeyring
from federation.safe_http import SafeHttpClient
from registry.core.errors import ApiError
from registry.core.models import InboxMessage, table
from registry.peers import inbox as inbox_module
from registry.peers.errors import PeerSuspended
from registry.peers.guard import PeerGuard
from registry.peers.inbox import Inbox
from registry.runtime.db import create_engine
from registry.runtime.migrate import upgrade
from registry.runtime.retention import Retention
from tests.clock import FakeClock
from tests.databases import database_url

__all__ = ["database_url"]  # a fixture


@pytest.fixture
async def engines(database_url: str) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    """Two replicas' engines on one database."""
    first, second = create_engine(database_url), create_engine(database_url)
    await upgrade(first)
    try:
        yield first, second
    finally:
        await first.dispose()
        await second.dispose()


@pytest.fixture
async def http() -> AsyncIterator[SafeHttpClient]:
    client = SafeHttpClient(DiscoveryConfig())
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def replica(engine: AsyncEngine, http: SafeHttpClient, clock: FakeClock) -> Inbox:
    guard = PeerGuard(engine.begin, PeerKeyring(http), "https://zurich.test", clock)
    return Inbox(engine.begin, guard, clock)


class Handler:
    """Counts its runs; answers with the run's number, or raises `error`."""

    def __init__(self, error: Exception | None = None) -> None:
        self.runs = 0
        self.error = error
        self.gate: asyncio.Event | None = None
        self.started = asyncio.Event()

    async def __call__(self) -> dict[str, Any]:
        self.runs += 1
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error
        return {"run": self.runs}


async def kept(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        count = select(func.count()).select_from(table(InboxMessage))
        return int((await conn.execute(count)).scalar_one())


async def test_a_repeat_gets_the_first_answer_without_being_handled_again(
    engines: tuple[AsyncEngine, AsyncEngine], http: SafeHttpClient, clock: FakeClock
) -> None:
    inbox, handle = replica(engines[0], http, clock), Handler()

    assert await inbox.once("paris.test", "m1", handle) == {"run": 1}
    assert await inbox.once("paris.test", "m1", handle) == {"run": 1}
    assert handle.runs == 1
    # ids are the sender's: another peer's m1, or a message without an id, is handled
    assert await inbox.once("lyon.test", "m1", handle) == {"run": 2}
    assert await inbox.once("paris.test", None, handle) == {"run": 3}


async def test_a_refusal_is_repeated_alike_and_a_crash_is_handled_again(
    engines: tuple[AsyncEngine, AsyncEngine], http: SafeHttpClient, clock: FakeClock
) -> None:
    inbox = replica(engines[0], http, clock)
    refused = Handler(PeerSuspended("the peering with paris.test is suspended"))
    for _delivery in range(2):
        with pytest.raises(ApiError) as caught:
            await inbox.once("paris.test", "refused", refused)
        assert (caught.value.status, caught.value.code) == (403, "peer_suspended")
        assert caught.value.message == "the peering with paris.test is suspended"
    assert refused.runs == 1

    crashing = Handler(RuntimeError("the database went away"))
    with pytest.raises(RuntimeError):
        await inbox.once("paris.test", "crashed", crashing)
    crashing.error = None
    assert await inbox.once("paris.test", "crashed", crashing) == {"run": 2}


async def test_two_replicas_receiving_one_message_at_once_handle_it_once(
    engines: tuple[AsyncEngine, AsyncEngine], http: SafeHttpClient, clock: FakeClock
) -> None:
    first, second = (replica(engine, http, clock) for engine in engines)
    handle = Handler()
    handle.gate = asyncio.Event()

    one = asyncio.create_task(first.once("paris.test", "m1", handle))
    await handle.started.wait()  # the first replica is handling it...
    two = asyncio.create_task(second.once("paris.test", "m1", handle))
    await asyncio.sleep(0.2)
    assert not two.done()  # ...the second waits for its answer
    handle.gate.set()

    assert await one == await two == {"run": 1}
    assert handle.runs == 1


async def test_a_message_still_handled_elsewhere_is_refused_for_later(
    engines: tuple[AsyncEngine, AsyncEngine],
    http: SafeHttpClient,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(inbox_module, "WAIT_FOR_OTHER_S", 0.2)
    first, second = (replica(engine, http, clock) for engine in engines)
    handle = Handler()
    handle.gate = asyncio.Event()
    one = asyncio.create_task(first.once("paris.test", "m1", handle))
    await handle.started.wait()

    with pytest.raises(ApiError) as caught:
        await second.once("paris.test", "m1", handle)
    assert (caught.value.status, caught.value.code) == (409, "message_in_progress")
    assert caught.value.headers == {"Retry-After": "1"}

    # a replica that died while handling it is presumed dead after the lease: taken over
    clock.advance(inbox_module.HANDLING_LEASE + timedelta(seconds=1))
    stuck, handle.gate = handle.gate, None
    assert await second.once("paris.test", "m1", handle) == {"run": 2}
    stuck.set()
    await one


async def test_message_ids_are_kept_a_day_then_pruned(
    engines: tuple[AsyncEngine, AsyncEngine], http: SafeHttpClient, clock: FakeClock
) -> None:
    inbox, handle = replica(engines[0], http, clock), Handler()
    await inbox.once("paris.test", "m1", handle)
    retention = Retention(engines[0], timedelta(days=30), clock)

    await retention.sweep(clock.now() + inbox_module.KEPT)
    assert await kept(engines[0]) == 1
    assert await inbox.once("paris.test", "m1", handle) == {"run": 1}

    await retention.sweep(clock.now() + inbox_module.KEPT + timedelta(seconds=1))
    assert await kept(engines[0]) == 0
