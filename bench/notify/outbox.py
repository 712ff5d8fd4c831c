"""4. Outbox: a webhook receiver subscribed to the space; K renames from several concurrent
clients; deliveries/s, and the time from the last change to the last delivery. Then the drain:
the receiver holds the first delivery while a backlog builds, then lets go; the outbox alone
sets the pace.

The receiver is the tests' (tests/receivers.py: echoes the challenge, checks each delivery's
signature with common.webhook_signature, drops repeated event ids), in a thread, behind a wrapper
that notes when each delivery arrived and holds deliveries while asked to."""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from dataclasses import dataclass

from starlette.types import Receive, Scope, Send

from bench.notify.server import Registry
from common.webhook_signature import ID_HEADER
from tests.receivers import Receiver
from tests.servers import free_port, serve

WEBHOOK_SECRET = "bench-webhook-secret-" + secrets.token_hex(8)
DELIVERY_STALL_S = 20.0  # give up waiting for deliveries after this long without progress
DRAIN_BUILD_S = 3.0  # the backlog for the drain figure: what the API writes in this long
HOLD_MAX_S = 4.0  # the registry gives a delivery 5 s to be answered


class Deliveries:
    """tests.receivers.Receiver, timed: the arrival of each event id, and the arrivals of each
    burst's renames (named `<burst> <n>`). While `release` is clear it keeps deliveries in hand
    unanswered (the worker sends one destination's queue in order, so it waits)."""

    def __init__(self) -> None:
        self.receiver = Receiver(WEBHOOK_SECRET)
        self.inner = self.receiver.app()
        self.arrived: dict[str, float] = {}
        self.release = threading.Event()
        self.release.set()
        self.held = threading.Event()
        self.bursts: dict[str, list[float]] = {}
        self._counted = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            if not self.release.is_set():
                self.held.set()
                await asyncio.to_thread(self.release.wait)
            event_id = dict(scope["headers"]).get(ID_HEADER.encode(), b"")
            self.arrived.setdefault(event_id.decode(), time.perf_counter())
        await self.inner(scope, receive, send)

    def burst(self, name: str) -> list[float]:
        """When each unique event id of burst `name` came, so far."""
        order, events = self.receiver.order, self.receiver.events
        while self._counted < len(order):
            event_id = order[self._counted]
            self._counted += 1
            payload = events[event_id]
            data = payload.get("data", {})
            renamed = str(data.get("name", "")) if payload.get("type") == "renamed" else ""
            if " " in renamed:
                self.bursts.setdefault(renamed.split(" ", 1)[0], []).append(self.arrived[event_id])
        return self.bursts.get(name, [])

    async def until(self, name: str, count: int) -> list[float]:
        """Until `count` unique ids of burst `name` are in, or none came for `DELIVERY_STALL_S`."""
        seen, progressed = -1, time.perf_counter()
        while len(self.burst(name)) < count:
            if len(self.burst(name)) != seen:
                seen, progressed = len(self.burst(name)), time.perf_counter()
            elif time.perf_counter() - progressed > DELIVERY_STALL_S:
                break
            await asyncio.sleep(0.01)
        return self.burst(name)


@dataclass
class Burst:
    """K renames from several clients, as the API answered them."""

    changes: int
    writers: int
    errors: int
    first_sent: float
    last_answer: float
    api_ms: list[float]
    server_cpu_s: float

    @property
    def rate(self) -> float:
        span = self.last_answer - self.first_sent
        return (self.changes - self.errors) / span if span > 0 else 0.0

    @property
    def accepted(self) -> int:
        return self.changes - self.errors


async def burst(
    registry: Registry, token: str, space_id: str, name: str, changes: int, writers: int
) -> Burst:
    """`changes` renames of the space to `<name> <n>` by `writers` concurrent clients."""
    counter = iter(range(changes))
    api_ms: list[float] = []
    errors = 0
    last_answer = 0.0
    cpu_before = registry.cpu_s()
    async with registry.api(token) as api:

        async def writer() -> None:
            nonlocal errors, last_answer
            for n in counter:
                started = time.perf_counter()
                response = await api.patch(
                    f"/graph/v1.0/drives/{space_id}", json={"name": f"{name} {n}"}
                )
                last_answer = time.perf_counter()
                if response.status_code != 200:
                    errors += 1
                else:
                    api_ms.append((last_answer - started) * 1000)

        began = time.perf_counter()
        await asyncio.gather(*(writer() for _ in range(writers)))
    return Burst(
        changes, writers, errors, began, last_answer, api_ms, registry.cpu_s() - cpu_before
    )


@dataclass
class Outbox:
    live: Burst
    received: int
    first_delivery: float
    last_delivery: float
    duplicates: int
    bad_signatures: int
    server_cpu_s: float  # over the burst and until the last delivery
    wall_s: float
    drain: Burst | None = None
    drain_backlog: int = 0  # undelivered when the receiver let go
    drain_received: int = 0
    drain_s: float = 0.0
    drain_cpu_s: float = 0.0
    drain_overlap: bool = False  # the burst was still running when the receiver let go

    @property
    def delivery_rate(self) -> float:
        span = self.last_delivery - self.first_delivery
        return (self.received - 1) / span if span > 0 else 0.0

    @property
    def lag_s(self) -> float:
        return self.last_delivery - self.live.last_answer if self.received else float("inf")

    @property
    def drain_rate(self) -> float:
        return self.drain_backlog / self.drain_s if self.drain_s > 0 else 0.0


async def subscribe(registry: Registry, token: str, space_id: str, callback: str) -> None:
    async with registry.api(token) as api:
        response = await api.post(
            "/api/v1/subscriptions",
            json={
                "callbackUrl": callback,
                "secret": WEBHOOK_SECRET,
                "leaseSeconds": 3600,
                "drives": [space_id],
            },
        )
    if response.status_code != 201:
        raise SystemExit(f"subscribing answered {response.status_code}: {response.text}")


async def outbox(
    registry: Registry, token: str, space_id: str, changes: int, writers: int
) -> Outbox:
    deliveries = Deliveries()
    receiver = deliveries.receiver
    # serve() starts and stops uvicorn in a thread; it blocks this loop only then.
    with serve(deliveries, free_port()) as url:
        await subscribe(registry, token, space_id, f"{url}/hook")

        # Live: deliveries while the renames come in.
        cpu_before, began = registry.cpu_s(), time.perf_counter()
        live = await burst(registry, token, space_id, "live", changes, writers)
        arrivals = await deliveries.until("live", live.accepted)
        result = Outbox(
            live,
            len(arrivals),
            min(arrivals, default=0.0),
            max(arrivals, default=0.0),
            receiver.duplicates,
            receiver.bad_signatures,
            registry.cpu_s() - cpu_before,
            time.perf_counter() - began,
        )

        # Drain: hold the first delivery while a backlog builds (for less than the registry's
        # 5 s read timeout), then let go.
        drain_changes = max(1, min(changes, int(live.rate * DRAIN_BUILD_S)))
        deliveries.release.clear()
        making = asyncio.create_task(
            burst(registry, token, space_id, "drain", drain_changes, writers)
        )
        if not await asyncio.to_thread(deliveries.held.wait, DRAIN_BUILD_S):
            deliveries.release.set()
            await making
            return result  # no delivery came to hold: report the live figures only
        await asyncio.wait({making}, timeout=HOLD_MAX_S)
        result.drain_overlap = not making.done()
        released = time.perf_counter()
        cpu_before = registry.cpu_s()
        deliveries.release.set()
        drain = await making
        result.drain_backlog = drain.accepted - len(deliveries.burst("drain"))
        arrivals = await deliveries.until("drain", drain.accepted)
        result.drain = drain
        result.drain_received = len(arrivals)
        result.drain_s = max(arrivals, default=released) - released
        result.drain_cpu_s = registry.cpu_s() - cpu_before
        result.duplicates = receiver.duplicates
        result.bad_signatures = receiver.bad_signatures
        return result
