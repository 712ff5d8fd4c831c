"""2. Fan-out: N idle SSE subscribers, opened in batches, then one rename of the space; the time
until every subscriber has the `renamed` event. The subscribers are opened in steps (1,000,
then up to 10,000) and the server's memory is read at each step once they are idle (3.).

The subscribers are a minimal client on raw asyncio transports, not httpx2, on purpose: this
phase holds up to 10,000 connections in one process and times the last of them to see the
event. An httpx2 stream costs the client about 33 KB and a task per connection, and parsing the
event through h11 and its SSE decoder on 1,000 connections took ~130 ms against ~50 ms here:
the figure would be the client's. The server sees the same request either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from dataclasses import dataclass
from typing import cast

import orjson

from bench.common.load import HOST
from bench.notify.memory import IDLE_BEFORE_RSS_S, Memory, sample
from bench.notify.server import Registry

OPEN_BATCH = 500  # SSE connections opened at once (uvicorn's accept backlog is 2048)
FANOUT_TIMEOUT_S = 30.0
SSE = b"text/event-stream"


class Tally:
    """Counts the subscribers still waiting for the change; `done` is set when none are."""

    def __init__(self, waiting: int) -> None:
        self.waiting = waiting
        self.done = asyncio.Event()
        if waiting <= 0:
            self.done.set()

    def arrived(self) -> None:
        self.waiting -= 1
        if self.waiting <= 0:
            self.done.set()


class Subscriber(asyncio.Protocol):
    """An idle SSE client at the transport level: checks the response head, then only looks
    for the marker of the awaited change in what arrives, and notes when it came."""

    __slots__ = ("arrived", "buffer", "established", "head", "marker", "tail", "tally", "transport")

    def __init__(self, established: asyncio.Future[None]) -> None:
        self.established = established
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.head = b""
        self.marker = b""
        self.tail = b""
        self.tally: Tally | None = None
        self.arrived = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        if not self.head:
            self.buffer += data
            if b"\r\n\r\n" not in self.buffer:
                return
            self.head, _, data = self.buffer.partition(b"\r\n\r\n")
            self.buffer = b""
            if not self.established.done():
                self.established.set_result(None)
        if self.marker and not self.arrived:
            seen = self.tail + data
            if self.marker in seen:
                self.arrived = time.perf_counter()
                if self.tally is not None:
                    self.tally.arrived()
            else:
                self.tail = seen[-len(self.marker) :]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.established.done():
            self.established.set_exception(exc or ConnectionError("closed before the head"))

    def arm(self, marker: bytes, tally: Tally) -> None:
        self.marker, self.tail, self.arrived, self.tally = marker, b"", 0.0, tally

    @property
    def ok(self) -> bool:
        status, *headers = self.head.split(b"\r\n")
        return status.startswith(b"HTTP/1.1 200 ") and any(
            h.lower().startswith(b"content-type:") and SSE in h for h in headers
        )

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def open_subscribers(port: int, token: str, count: int) -> tuple[list[Subscriber], float]:
    """`count` SSE connections, `OPEN_BATCH` at a time; each must answer 200 event-stream."""
    loop = asyncio.get_running_loop()
    request = (
        f"GET /api/v1/events HTTP/1.1\r\nHost: {HOST}:{port}\r\nAccept: text/event-stream\r\n"
        f"Authorization: Bearer {token}\r\n\r\n"
    ).encode()
    opened: list[Subscriber] = []
    began = time.perf_counter()
    while len(opened) < count:
        batch = [
            Subscriber(loop.create_future()) for _ in range(min(OPEN_BATCH, count - len(opened)))
        ]

        async def connect(sub: Subscriber) -> None:
            transport, _ = await loop.create_connection(lambda: sub, HOST, port)
            transport.write(request)
            await asyncio.wait_for(sub.established, 30)

        await asyncio.gather(*(connect(s) for s in batch))
        bad = [s for s in batch if not s.ok]
        if bad:
            raise SystemExit(f"{len(bad)} SSE connections were refused, e.g. {bad[0].head!r}")
        opened.extend(batch)
    return opened, time.perf_counter() - began


def close_all(subscribers: list[Subscriber]) -> None:
    for sub in subscribers:
        sub.close()


@dataclass
class Fanout:
    n: int
    arrivals_ms: list[float]
    missing: int
    change_ms: float
    opened: int  # connections opened for this step
    open_s: float

    @property
    def last_ms(self) -> float:
        return max(self.arrivals_ms) if self.arrivals_ms else float("inf")


async def fanout(
    registry: Registry,
    token: str,
    space_id: str,
    subscribers: list[Subscriber],
    label: str,
    opened: int = 0,
    open_s: float = 0.0,
) -> Fanout:
    """Renames the space once; when each subscriber saw it."""
    name = f"fanout-{label}-{secrets.token_hex(4)}"
    marker = orjson.dumps({"name": name})
    tally = Tally(len(subscribers))
    for sub in subscribers:
        sub.arm(marker, tally)
    async with registry.api(token) as api:
        await api.get("/healthz")  # the connection is open before the clock starts
        sent = time.perf_counter()
        response = await api.patch(f"/graph/v1.0/drives/{space_id}", json={"name": name})
        change_ms = (time.perf_counter() - sent) * 1000
    if response.status_code != 200:
        raise SystemExit(f"rename answered {response.status_code}")
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(tally.done.wait(), FANOUT_TIMEOUT_S)
    arrivals = [(s.arrived - sent) * 1000 for s in subscribers if s.arrived]
    missing = len(subscribers) - len(arrivals)
    return Fanout(len(subscribers), arrivals, missing, change_ms, opened, open_s)


async def fanout_steps(
    registry: Registry, token: str, space_id: str, counts: list[int]
) -> tuple[list[Fanout], Memory]:
    """Warms the SSE path up and lets the server settle, then opens subscribers up to each of
    `counts` in turn; at each step, the server's memory once they are idle, then a fan-out."""
    warm, _ = await open_subscribers(registry.port, token, min(OPEN_BATCH, max(counts)))
    await fanout(registry, token, space_id, warm, "warmup")
    close_all(warm)
    del warm
    await asyncio.sleep(IDLE_BEFORE_RSS_S)
    memory = Memory([sample(registry, 0)])
    results: list[Fanout] = []
    subs: list[Subscriber] = []
    try:
        for n in counts:
            more, open_s = await open_subscribers(registry.port, token, n - len(subs))
            subs.extend(more)
            print(
                f"  opened {len(more):,} more SSE connections in {open_s:.1f} s; the server "
                f"holds {registry.open_fds():,} file descriptors",
                flush=True,
            )
            await asyncio.sleep(IDLE_BEFORE_RSS_S)
            memory.points.append(sample(registry, n))
            result = await fanout(registry, token, space_id, subs, str(n), len(more), open_s)
            results.append(result)
            print(
                f"  fan-out {n:,}: last after {result.last_ms:.0f} ms, missing {result.missing}",
                flush=True,
            )
    finally:
        close_all(subs)
        del subs
    await asyncio.sleep(IDLE_BEFORE_RSS_S)
    memory.rss_closed_kb = registry.status_kb("VmRSS")
    return results, memory
