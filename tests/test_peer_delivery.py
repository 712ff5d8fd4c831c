"""Deliveries to peers through the outbox, to two real receiving servers on loopback that
verify every signature, on a fake clock: a peer down for an hour backs off and opens its
circuit while the other peer's messages go at once; after recovery one probe closes the
circuit and every message arrives exactly once (counted by message id at the receiver)."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from federation.config import DiscoveryConfig
from federation.errors import SignatureError
from federation.incoming import IncomingRequest
from federation.keys import SigningKeys
from federation.peer_keys import StaticKeys, public_keys_from_jwks
from federation.replay import MemoryReplayCache
from federation.safe_http import SafeHttpClient
from federation.verification import RequestVerifier
from registry.core.models import Destination, OutboxEntry, table
from registry.outbox import store as outbox
from registry.outbox.delivery import CIRCUIT_OPENS_AFTER, RETRY_AFTER_MAX_S, DeliveryWorker
from registry.outbox.senders import PeerSender
from tests.clock import FakeClock
from tests.databases import migrated_engine, sqlite_url
from tests.servers import free_port, serve

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
INBOX = "/api/v1/peering/notice"


@dataclass
class Inbox:
    """What one receiving registry got: message ids of verified requests, in order."""

    received: list[str] = field(default_factory=list)

    def counts(self) -> Counter[str]:
        return Counter(self.received)


def receiving_app(inbox: Inbox, keys: SigningKeys, base_url: str, clock: FakeClock) -> Starlette:
    published = StaticKeys(public_keys_from_jwks(keys.jwks(), "sender").values())
    verifier = RequestVerifier(MemoryReplayCache(clock), clock)

    async def receive(request: Request) -> Response:
        incoming = IncomingRequest.from_scope(request.scope, base_url, await request.body())
        try:
            await verifier.verify(incoming, published)
        except SignatureError as exc:
            return JSONResponse({"error": {"code": exc.code}}, status_code=401)
        inbox.received.append(request.headers["idempotency-key"])
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route(INBOX, receive, methods=["POST"])])


@contextmanager
def receiver(inbox: Inbox, keys: SigningKeys, port: int, clock: FakeClock) -> Iterator[str]:
    base_url = f"http://127.0.0.1:{port}"
    with serve(receiving_app(inbox, keys, base_url, clock), port):
        yield base_url


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async with migrated_engine(sqlite_url(tmp_path)) as engine:
        yield engine


@pytest.fixture
async def http() -> AsyncIterator[SafeHttpClient]:
    client = SafeHttpClient(
        DiscoveryConfig(allow_http=True, allow_private_networks=("127.0.0.1/32",))
    )
    try:
        yield client
    finally:
        await client.aclose()


async def queue(engine: AsyncEngine, base_url: str, message_id: str, now: datetime) -> None:
    async with engine.begin() as conn:
        payload = {"domain": "zurich.test", "message": message_id}
        await outbox.queue_peer(conn, message_id, base_url + INBOX, payload, now)


async def destination(engine: AsyncEngine, origin: str) -> Any:
    async with engine.connect() as conn:
        found = await conn.execute(
            select(table(Destination)).where(table(Destination).c.origin == origin)
        )
        return found.first()


def peer_worker(
    engine: AsyncEngine, http: SafeHttpClient, keys: SigningKeys, clock: FakeClock
) -> DeliveryWorker:
    """The delivery worker with the peer sender alone; entries given up after two days."""
    return DeliveryWorker(
        engine, {outbox.PEER: PeerSender(http, keys)}, timedelta(days=2), clock=clock
    )


async def test_a_peer_down_for_an_hour_delays_no_other_and_gets_everything_once(
    engine: AsyncEngine, http: SafeHttpClient, tmp_path: Path
) -> None:
    clock = FakeClock(NOW)
    keys = SigningKeys.load_or_create(tmp_path / "keys")
    worker = peer_worker(engine, http, keys, clock)
    lyon, paris = Inbox(), Inbox()
    lyon_port = free_port()
    lyon_url = f"http://127.0.0.1:{lyon_port}"  # nothing listens there for an hour
    for n in range(5):
        await queue(engine, lyon_url, f"lyon-{n}", NOW)
    with receiver(paris, keys, free_port(), clock) as paris_url:
        tries_at: list[datetime] = []
        for minute in range(60):
            await queue(engine, paris_url, f"paris-{minute}", clock.now())
            before = await destination(engine, lyon_url)
            await worker.send_due()
            after = await destination(engine, lyon_url)
            if (before and before.failures) != after.failures:
                tries_at.append(clock.now())
            # paris's message of this minute arrived this minute, whatever lyon does
            assert paris.received[-1] == f"paris-{minute}"
            clock.advance(timedelta(minutes=1))

    assert paris.counts() == Counter(f"paris-{m}" for m in range(60))
    # lyon was tried within seconds, then ever more rarely: not once a minute
    assert len(tries_at) <= 12, tries_at
    gaps = [b - a for a, b in pairwise(tries_at)]
    assert gaps == sorted(gaps)
    down = await destination(engine, lyon_url)
    assert down.failures == len(tries_at) >= CIRCUIT_OPENS_AFTER
    assert down.opened_at is not None and down.retry_at > clock.now()
    assert "lyon" not in str(paris.received)

    with receiver(lyon, keys, lyon_port, clock):
        assert await worker.send_due() == 0  # the circuit is open until the retry time
        clock.advance(down.retry_at - clock.now())
        assert await worker.send_due() == 1  # one probe
        assert lyon.received == ["lyon-0"]
        assert (await destination(engine, lyon_url)).opened_at is None  # closed by it
        assert await worker.send_due() == 4
        assert await worker.send_due() == 0

    assert lyon.received == [f"lyon-{n}" for n in range(5)]
    assert set(lyon.counts().values()) == {1}
    async with engine.connect() as conn:
        states = (await conn.execute(select(table(OutboxEntry).c.state))).scalars().all()
    assert set(states) == {"delivered"} and len(states) == 65


def busy_app(
    inbox: Inbox, keys: SigningKeys, base_url: str, clock: FakeClock, refusals: list[Response]
) -> Starlette:
    """A receiving registry that first answers with each of `refusals` in turn, then accepts."""
    accepting = receiving_app(inbox, keys, base_url, clock)

    async def receive(request: Request) -> Response:
        if refusals:
            return refusals.pop(0)
        route = accepting.routes[0]
        assert isinstance(route, Route)
        answer: Response = await route.endpoint(request)
        return answer

    return Starlette(routes=[Route(INBOX, receive, methods=["POST"])])


@pytest.mark.parametrize(
    ("status", "retry_after", "waits"),
    [
        (429, "120", timedelta(seconds=120)),
        (503, format_datetime(NOW + timedelta(minutes=5), usegmt=True), timedelta(minutes=5)),
        (429, str(30 * 24 * 3600), timedelta(seconds=RETRY_AFTER_MAX_S)),  # bounded (4 h)
    ],
)
async def test_a_busy_peers_retry_after_is_honoured_and_kept_with_the_backoff(
    engine: AsyncEngine,
    http: SafeHttpClient,
    tmp_path: Path,
    status: int,
    retry_after: str,
    waits: timedelta,
) -> None:
    clock = FakeClock(NOW)
    keys = SigningKeys.load_or_create(tmp_path / "keys")
    worker = peer_worker(engine, http, keys, clock)
    inbox, port = Inbox(), free_port()
    base_url = f"http://127.0.0.1:{port}"
    busy = JSONResponse(
        {"error": {"code": "busy"}}, status_code=status, headers={"Retry-After": retry_after}
    )
    with serve(busy_app(inbox, keys, base_url, clock, [busy]), port):
        await queue(engine, base_url, "m-1", NOW)
        assert await worker.send_due() == 1
        persisted = await destination(engine, base_url)
        assert (persisted.failures, persisted.retry_at) == (1, NOW + waits)
        clock.advance(waits - timedelta(seconds=1))
        assert await worker.send_due() == 0  # not before the peer asked
        clock.advance(timedelta(seconds=1))
        assert await worker.send_due() == 1
    assert inbox.received == ["m-1"]
