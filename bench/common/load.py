"""A keep-alive HTTP/1.1 load generator on raw asyncio streams, and figures from its runs.

It is hand-written on purpose: it must cost much less than the server it loads, on the same
machine. With httpx2 one client core tops out near 1,500 requests/s (about 0.6 ms per request
in the client), an order of magnitude below what the registry answers on `/healthz`, so the
figure would be the client's. Use httpx2 for everything else.
"""

from __future__ import annotations

import asyncio
import ssl
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

HOST = "127.0.0.1"


def pct(values: list[float], q: float) -> float:
    """The `q`th percentile of `values` (nearest rank), 0 when there are none."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] if ordered else 0.0


def mark(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    uvloop.install()


@dataclass
class Load:
    """What one run of the load generator saw."""

    latencies_ms: list[float] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)
    errors: int = 0
    wall_s: float = 0.0

    def pct(self, q: float) -> float:
        return pct(self.latencies_ms, q)

    @property
    def rps(self) -> float:
        return len(self.latencies_ms) / self.wall_s if self.wall_s else 0.0

    @property
    def mean_ms(self) -> float:
        return statistics.fmean(self.latencies_ms) if self.latencies_ms else 0.0

    @property
    def mean_server_ms(self) -> float:
        return statistics.fmean(self.server_ms) if self.server_ms else 0.0

    def line(self, label: str) -> str:
        return (
            f"  {label:<26} n={len(self.latencies_ms):>6}  {self.rps:>8.0f} req/s  "
            f"p50 {self.pct(50):6.2f}  p90 {self.pct(90):6.2f}  p99 {self.pct(99):6.2f}  "
            f"mean {self.mean_ms:6.2f} ms  server {self.mean_server_ms:6.2f} ms"
            + (f"  ERRORS {self.errors}" if self.errors else "")
        )


def get_request(path: str, port: int, token: str | None = None) -> bytes:
    """The bytes of `GET path`, sent as they are on every request of a run."""
    lines = [f"GET {path} HTTP/1.1", f"Host: {HOST}:{port}", "Accept: application/json"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _parse_head(head: bytes) -> tuple[int, int, float | None]:
    """(status, Content-Length, Server-Timing dur in ms); the server sends no chunked bodies
    to these GETs."""
    status = int(head[9:12])
    length, server = 0, None
    for raw in head.split(b"\r\n")[1:]:
        name, _, value = raw.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"server-timing":
            for part in value.split(b";"):
                if part.strip().startswith(b"dur="):
                    server = float(part.strip()[4:].split(b",")[0])
    return status, length, server


class _Connection(asyncio.Protocol):
    """One keep-alive connection: sends a request, counts the answer's bytes without keeping
    them (reading 140 KB bodies through a `StreamReader` cost the client as much CPU as the
    server spent answering), then sends the next, until told to stop."""

    def __init__(self, run: _Run) -> None:
        self._run = run
        self._transport: asyncio.Transport | None = None
        self._head = bytearray()
        self._body_left = -1  # -1: reading the head
        self._status = 0
        self._server: float | None = None
        self._started = 0.0
        loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[None] = loop.create_future()  # uvloop may connect later
        self.done: asyncio.Future[None] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self.ready.set_result(None)

    def send_next(self) -> None:
        assert self._transport is not None
        if not self._run.take():
            if not self.done.done():
                self.done.set_result(None)
            return
        self._started = time.perf_counter()
        self._transport.write(self._run.next_request())

    def data_received(self, data: bytes) -> None:
        while data:
            if self._body_left < 0:
                self._head += data
                end = self._head.find(b"\r\n\r\n")
                if end < 0:
                    return
                self._status, self._body_left, self._server = _parse_head(bytes(self._head[:end]))
                data = bytes(self._head[end + 4 :])
                self._head.clear()
            taken = min(len(data), self._body_left)
            self._body_left -= taken
            data = data[taken:]
            if self._body_left == 0:
                self._answered()

    def _answered(self) -> None:
        self._body_left = -1
        self._run.record(self._status, time.perf_counter() - self._started, self._server)
        self.send_next()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(exc or ConnectionError("the server closed the connection"))


@dataclass
class _Run:
    next_request: Callable[[], bytes]
    remaining: float
    deadline: float
    result: Load

    def take(self) -> bool:
        """Whether one more request may be sent (and count it)."""
        if self.remaining <= 0 or time.perf_counter() >= self.deadline:
            return False
        self.remaining -= 1
        return True

    def record(self, status: int, seconds: float, server: float | None) -> None:
        if status != 200:
            self.result.errors += 1
            return
        self.result.latencies_ms.append(seconds * 1000)
        if server is not None:
            self.result.server_ms.append(server)


async def load(
    port: int,
    request: bytes | Callable[[], bytes],
    concurrency: int,
    duration_s: float,
    max_requests: int | None = None,
    tls: tuple[ssl.SSLContext, str] | None = None,
) -> Load:
    """`concurrency` connections each sending `request` again as soon as it is answered, for
    `duration_s` or until `max_requests` were sent in all. `request` may be a function that
    gives the bytes of each next request (each signed request can be sent only once). `tls`:
    the context and server name to connect with TLS."""
    loop = asyncio.get_running_loop()
    result = Load()
    context, name = tls if tls else (None, None)
    run = _Run(
        request if callable(request) else lambda: request,
        max_requests if max_requests is not None else float("inf"),
        float("inf"),
        result,
    )
    connections: list[_Connection] = []
    began = time.perf_counter()
    try:
        for _ in range(concurrency):
            _transport, protocol = await loop.create_connection(
                lambda: _Connection(run), HOST, port, ssl=context, server_hostname=name
            )
            await protocol.ready
            connections.append(protocol)
        run.deadline = time.perf_counter() + duration_s
        began = time.perf_counter()
        for connection in connections:
            connection.send_next()
        # Every connection's end is awaited, so that none's error goes unretrieved.
        ended = await asyncio.gather(
            *(connection.done for connection in connections), return_exceptions=True
        )
        failed = [error for error in ended if isinstance(error, BaseException)]
        if failed:
            raise failed[0]
    finally:
        result.wall_s = time.perf_counter() - began
        for connection in connections:
            connection.close()
    return result
