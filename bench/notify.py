"""Benchmark change notifications: WebDAV PUT to SSE latency, SSE fan-out, memory per idle SSE
connection, and webhook outbox throughput, against the registry run as its own process.

Starts `python -m registry --data-dir <tmp> serve` on a free loopback port (SQLite, embedded
IdP), creates one project space as admin (its manager) and measures, in one run:

1. PUT->SSE: sequential WebDAV PUTs of a small file on one keep-alive connection; for each, the
   time from sending the PUT until one SSE client gets the `content` event naming its path.
2. Fan-out: N idle SSE subscribers (raw asyncio protocol clients, opened in batches), then one
   rename of the space; the time until every subscriber has the `renamed` event.
3. Memory: the server's RSS (and PSS) before and after opening the largest N, divided by N.
4. Outbox: a webhook receiver in this process (uvicorn, answers the challenge, 204s deliveries,
   checks signatures, counts unique event ids) subscribed to the space; K renames from several
   concurrent clients; deliveries/s, and the time from the last change to the last delivery.
5. `/healthz` requests/s with the same client style, as a yardstick.

    .venv/bin/python bench/notify.py [--quick] [--writes 500] [--fanout 1000,10000]
                                     [--changes 2000] [--writers 8]

Prints figures and PASS/MISS against the targets; it does not fail.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs

import orjson
import uvicorn
from starlette.types import Receive, Scope, Send

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common.bounded import read_body
from common.webhook_signature import BadSignature, verify
from tests.processes import stop_process, wait_until_serving
from tests.servers import free_port

HOST = "127.0.0.1"
WEBHOOK_SECRET = "bench-webhook-secret-" + secrets.token_hex(8)
SSE = "text/event-stream"
HEALTH_CONCURRENCY = 32
OPEN_BATCH = 500  # SSE connections opened at once (uvicorn's accept backlog is 2048)
IDLE_BEFORE_RSS_S = 3.0
EVENT_TIMEOUT_S = 10.0
FANOUT_TIMEOUT_S = 30.0
DELIVERY_STALL_S = 20.0  # give up waiting for deliveries after this long without progress
DRAIN_BUILD_S = 3.0  # the backlog for the drain figure: what the API writes in this long
HOLD_MAX_S = 4.0  # the registry gives a delivery 5 s to be answered
DELIVERY_LIMIT = 1 << 20  # bytes; a rename's delivery is well under 1 KB
TARGET_PUT_P99_MS = 100.0
TARGET_FANOUT_S = 1.0
TARGET_FANOUT_N = 10_000
TARGET_KB_PER_CONNECTION = 20.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] if ordered else 0.0


def _mark(ok: bool) -> str:
    return "PASS" if ok else "MISS"


# ---------------------------------------------------------------- the registry process


def raise_nofile() -> tuple[int, int]:
    """Soft open-files limit up to the hard one; the registry inherits it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else 1_048_576
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def _child_nofile() -> None:
    """preexec_fn: the same raise in the child, in case it did not inherit it."""
    raise_nofile()


class Registry:
    """`python -m registry serve` in a scratch data directory."""

    def __init__(self, directory: Path, port: int) -> None:
        self.directory = directory
        self.port = port
        self.log = directory / "server.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SPACEREG_")}
        self.env.update(
            {
                "SPACEREG_HOST": HOST,
                "SPACEREG_PORT": str(port),
                "SPACEREG_ALLOW_PRIVATE_NETWORKS": "127.0.0.0/8",
                "SPACEREG_ALLOW_HTTP": "1",
            }
        )
        self.process: subprocess.Popen[bytes] | None = None

    def _command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "registry", "--data-dir", str(self.directory / "data"), *args]

    def start(self) -> None:
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                self._command("serve"),
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
                preexec_fn=_child_nofile,
            )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def wait_ready(self) -> None:
        assert self.process is not None
        url = f"http://{HOST}:{self.port}"
        if not await asyncio.to_thread(wait_until_serving, url, self.process, 60):
            raise SystemExit(f"the registry did not start:\n{self.tail()}")

    def token(self, user: str) -> str:
        """`spacereg token <user>` against the same data directory and settings."""
        done = subprocess.run(
            self._command("token", user), env=self.env, capture_output=True, check=False
        )
        if done.returncode != 0:
            raise SystemExit(f"spacereg token {user} failed: {done.stderr.decode()}")
        return done.stdout.decode().strip()

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def status_kb(self, field_name: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
        return 0

    def pss_kb(self) -> int:
        try:
            text = Path(f"/proc/{self.pid}/smaps_rollup").read_text()
        except OSError:
            return 0
        for line in text.splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
        return 0

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def nofile(self) -> str:
        for line in Path(f"/proc/{self.pid}/limits").read_text().splitlines():
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return f"{soft}/{hard}"
        return "?"

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, signal.SIGINT)


# ---------------------------------------------------------------- a keep-alive HTTP/1.1 client


class Http:
    """One keep-alive connection, one request at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int):
        self.reader = reader
        self.writer = writer
        self.port = port

    @classmethod
    async def open(cls, port: int) -> Http:
        reader, writer = await asyncio.open_connection(HOST, port)
        return cls(reader, writer, port)

    def close(self) -> None:
        self.writer.close()

    def head(
        self,
        method: str,
        path: str,
        token: str | None = None,
        body: bytes = b"",
        kind: str = "",
        accept: str = "",
    ) -> bytes:
        return request_head(self.port, method, path, token, body, kind, accept)

    async def request(
        self, method: str, path: str, token: str | None = None, body: bytes = b"", kind: str = ""
    ) -> tuple[int, dict[bytes, bytes], bytes]:
        for attempt in range(2):
            self.writer.write(self.head(method, path, token, body, kind) + body)
            try:
                return await read_response(self.reader, method == "HEAD")
            except (asyncio.IncompleteReadError, ConnectionError):
                # The server closes a connection idle past its keep-alive timeout (5 s): the
                # request was not read; open a new connection and send it again, once.
                if attempt:
                    raise
                self.close()
                self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        raise AssertionError("unreachable")

    async def json(self, method: str, path: str, token: str, value: Any = None) -> tuple[int, Any]:
        body = b"" if value is None else orjson.dumps(value)
        status, _, data = await self.request(method, path, token, body, "application/json")
        return status, orjson.loads(data) if data else None


def request_head(
    port: int,
    method: str,
    path: str,
    token: str | None = None,
    body: bytes = b"",
    kind: str = "",
    accept: str = "",
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{port}"]
    if accept:
        lines.append(f"Accept: {accept}")
    if token:
        lines.append(f"Authorization: Bearer {token}")
    if body or method in {"PUT", "POST", "PATCH"}:
        lines.append(f"Content-Length: {len(body)}")
    if kind:
        lines.append(f"Content-Type: {kind}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def parse_head(head: bytes) -> tuple[int, dict[bytes, bytes]]:
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    headers: dict[bytes, bytes] = {}
    for raw in lines[1:]:
        name, _, value = raw.partition(b":")
        if name:
            headers[name.strip().lower()] = value.strip()
    return status, headers


async def read_response(
    reader: asyncio.StreamReader, no_body: bool = False
) -> tuple[int, dict[bytes, bytes], bytes]:
    status, headers = parse_head(await reader.readuntil(b"\r\n\r\n"))
    if no_body or status in (204, 304) or 100 <= status < 200:
        return status, headers, b""
    if b"content-length" in headers:
        return status, headers, await reader.readexactly(int(headers[b"content-length"]))
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            parts.append(chunk[:-2])
        return status, headers, b"".join(parts)
    return status, headers, await reader.read()


# ---------------------------------------------------------------- 5. the yardstick


@dataclass
class Load:
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    wall_s: float = 0.0

    @property
    def rps(self) -> float:
        return len(self.latencies_ms) / self.wall_s if self.wall_s else 0.0


async def health_load(port: int, concurrency: int, duration_s: float) -> Load:
    result = Load()
    connections = [await Http.open(port) for _ in range(concurrency)]
    request = connections[0].head("GET", "/healthz")
    deadline = time.perf_counter() + duration_s

    async def client(conn: Http) -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            conn.writer.write(request)
            status, _, _ = await read_response(conn.reader)
            if status != 200:
                result.errors += 1
                continue
            result.latencies_ms.append((time.perf_counter() - started) * 1000)

    began = time.perf_counter()
    try:
        await asyncio.gather(*(client(c) for c in connections))
    finally:
        result.wall_s = time.perf_counter() - began
        for conn in connections:
            conn.close()
    return result


# ---------------------------------------------------------------- 1. PUT -> SSE latency


@dataclass
class SseEvent:
    id: str
    type: str
    data: dict[str, Any]
    arrived: float


class SseClient:
    """One SSE client on a raw stream: de-chunks the body, parses frames, calls back per event."""

    def __init__(self, port: int, token: str, on_event: Callable[[SseEvent], None]) -> None:
        self.port = port
        self.token = token
        self.on_event = on_event
        self.task: asyncio.Task[None] | None = None
        self.conn: Http | None = None

    async def start(self) -> None:
        self.conn = conn = await Http.open(self.port)
        conn.writer.write(conn.head("GET", "/api/v1/events", self.token, accept=SSE))
        status, headers = parse_head(await conn.reader.readuntil(b"\r\n\r\n"))
        if status != 200 or not headers.get(b"content-type", b"").startswith(SSE.encode()):
            raise SystemExit(f"SSE answered {status} {headers}")
        self.task = asyncio.create_task(self._read(conn.reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        buffer = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                return
            buffer += chunk[:-2]
            *frames, buffer = buffer.split(b"\n\n")
            arrived = time.perf_counter()
            for frame in frames:
                fields: dict[str, str] = {}
                for line in frame.decode().split("\n"):
                    if line and not line.startswith(":"):
                        name, _, value = line.partition(":")
                        fields[name] = value.removeprefix(" ")
                if "data" in fields:
                    self.on_event(
                        SseEvent(
                            fields.get("id", ""),
                            fields.get("event", "message"),
                            orjson.loads(fields["data"]),
                            arrived,
                        )
                    )

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.conn is not None:
            self.conn.close()


@dataclass
class PutResult:
    writes: int
    event_ms: list[float]
    response_ms: list[float]
    missed: int
    errors: int
    wall_s: float
    server_cpu_s: float


async def put_latency(
    registry: Registry, token: str, space_id: str, writes: int, warmup: int
) -> PutResult:
    loop = asyncio.get_running_loop()
    waiting: dict[str, asyncio.Future[float]] = {}

    def on_event(event: SseEvent) -> None:
        if event.type != "content" or event.data.get("driveId") != space_id:
            return
        for path in event.data.get("data", {}).get("paths", ()):
            future = waiting.pop(path, None)
            if future is not None and not future.done():
                future.set_result(event.arrived)

    sse = SseClient(registry.port, token, on_event)
    await sse.start()
    conn = await Http.open(registry.port)
    body = b"x" * 64
    event_ms: list[float] = []
    response_ms: list[float] = []
    missed = errors = 0
    cpu_before = registry.cpu_s()
    began = time.perf_counter()
    try:
        for n in range(warmup + writes):
            path = f"/bench-put-{n:05d}.txt"
            future: asyncio.Future[float] = loop.create_future()
            waiting[path] = future
            sent = time.perf_counter()
            status, _, _ = await conn.request(
                "PUT", f"/dav/spaces/{space_id}{path}", token, body, "text/plain"
            )
            answered = time.perf_counter()
            if status not in (200, 201, 204):
                errors += 1
                waiting.pop(path, None)
                continue
            try:
                arrived = await asyncio.wait_for(future, EVENT_TIMEOUT_S)
            except TimeoutError:
                missed += 1
                waiting.pop(path, None)
                continue
            if n >= warmup:
                response_ms.append((answered - sent) * 1000)
                event_ms.append((arrived - sent) * 1000)
            if n + 1 == warmup:
                cpu_before = registry.cpu_s()
                began = time.perf_counter()
    finally:
        wall = time.perf_counter() - began
        conn.close()
        await sse.close()
    return PutResult(
        writes, event_ms, response_ms, missed, errors, wall, registry.cpu_s() - cpu_before
    )


# ---------------------------------------------------------------- 2./3. fan-out and memory


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

    __slots__ = (
        "arrived",
        "buffer",
        "established",
        "headers",
        "marker",
        "request",
        "status",
        "tail",
        "tally",
        "transport",
    )

    def __init__(self, request: bytes, established: asyncio.Future[None]) -> None:
        self.request = request
        self.established = established
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.status = 0
        self.headers: dict[bytes, bytes] = {}
        self.marker = b""
        self.tail = b""
        self.tally: Tally | None = None
        self.arrived = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        if not self.status:
            self.buffer += data
            if b"\r\n\r\n" not in self.buffer:
                return
            head, _, rest = self.buffer.partition(b"\r\n\r\n")
            self.buffer = b""
            self.status, self.headers = parse_head(head)
            if not self.established.done():
                self.established.set_result(None)
            data = rest
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
        return self.status == 200 and self.headers.get(b"content-type", b"").startswith(
            SSE.encode()
        )

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def open_subscribers(port: int, token: str, count: int) -> tuple[list[Subscriber], float]:
    """`count` SSE connections, `OPEN_BATCH` at a time; each must answer 200 event-stream."""
    loop = asyncio.get_running_loop()
    request = request_head(port, "GET", "/api/v1/events", token, accept=SSE)
    opened: list[Subscriber] = []
    began = time.perf_counter()
    while len(opened) < count:
        batch = []
        for _ in range(min(OPEN_BATCH, count - len(opened))):
            established: asyncio.Future[None] = loop.create_future()
            batch.append(Subscriber(request, established))

        async def connect(sub: Subscriber) -> None:
            await loop.create_connection(lambda: sub, HOST, port)
            await asyncio.wait_for(sub.established, 30)

        await asyncio.gather(*(connect(s) for s in batch))
        bad = [s for s in batch if not s.ok]
        if bad:
            raise SystemExit(
                f"{len(bad)} SSE connections were refused, e.g. {bad[0].status} {bad[0].headers}"
            )
        opened.extend(batch)
    return opened, time.perf_counter() - began


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
    port: int,
    token: str,
    space_id: str,
    subscribers: list[Subscriber],
    label: str,
    opened: int,
    open_s: float,
) -> Fanout:
    name = f"fanout-{label}-{secrets.token_hex(4)}"
    marker = orjson.dumps({"name": name})
    tally = Tally(len(subscribers))
    for sub in subscribers:
        sub.arm(marker, tally)
    conn = await Http.open(port)
    try:
        sent = time.perf_counter()
        status, _ = await conn.json(
            "PATCH", f"/graph/v1.0/drives/{space_id}", token, {"name": name}
        )
        change_ms = (time.perf_counter() - sent) * 1000
        if status != 200:
            raise SystemExit(f"rename answered {status}")
    finally:
        conn.close()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(tally.done.wait(), FANOUT_TIMEOUT_S)
    arrivals = [(s.arrived - sent) * 1000 for s in subscribers if s.arrived]
    missing = len(subscribers) - len(arrivals)
    return Fanout(len(subscribers), arrivals, missing, change_ms, opened, open_s)


@dataclass
class Memory:
    """The server's (subscribers, RSS KB, PSS KB) at each step; the first is the baseline."""

    points: list[tuple[int, int, int]]
    rss_closed_kb: int = 0

    @property
    def n(self) -> int:
        return self.points[-1][0]

    @property
    def per_connection_kb(self) -> float:
        """(RSS with the most open - the baseline) / their number: the target's figure."""
        return (self.points[-1][1] - self.points[0][1]) / max(self.n, 1)

    @property
    def pss_per_connection_kb(self) -> float:
        return (self.points[-1][2] - self.points[0][2]) / max(self.n, 1)

    @property
    def marginal_kb(self) -> float | None:
        """Between the last two steps: the cost of one more connection, without the free
        memory the baseline process still had to give."""
        if len(self.points) < 3:
            return None
        (n0, rss0, _), (n1, rss1, _) = self.points[-2], self.points[-1]
        return (rss1 - rss0) / (n1 - n0) if n1 > n0 else None


def close_all(subscribers: list[Subscriber]) -> None:
    for sub in subscribers:
        sub.close()


# ---------------------------------------------------------------- 4. outbox throughput


@dataclass
class Phase:
    """Deliveries of one burst's renames (named `<phase> <n>`) as the receiver saw them."""

    ids: set[str] = field(default_factory=set)
    first: float = 0.0
    last: float = 0.0
    duplicates: int = 0


class Receiver:
    """The webhook callback: echoes the challenge, 204s deliveries after checking their
    signature, and counts unique event ids per burst. While `hold` is set it keeps the delivery
    in hand unanswered (the worker sends one destination's queue in order, so it waits)."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.phases: dict[str, Phase] = {}
        self.deliveries = 0
        self.bad_signatures = 0
        self.challenges = 0
        self.hold: asyncio.Event | None = None
        self.held = asyncio.Event()

    def phase(self, name: str) -> Phase:
        return self.phases.setdefault(name, Phase())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] == "GET":
            query = parse_qs(scope["query_string"].decode())
            self.challenges += 1
            answer = query.get("challenge", [""])[0].encode()
            await _respond(send, 200, answer)
            return
        body = await read_body(receive, DELIVERY_LIMIT)
        if body is None:
            await _respond(send, 413, b"too large")
            return
        headers = {name.decode(): value.decode() for name, value in scope["headers"]}
        try:
            event_id = verify([self.secret], body, headers)
        except BadSignature:
            self.bad_signatures += 1
            await _respond(send, 401, b"bad signature")
            return
        if self.hold is not None and not self.hold.is_set():
            self.held.set()
            await self.hold.wait()
        self.deliveries += 1
        payload = orjson.loads(body)
        name = (
            str(payload.get("data", {}).get("name", "")) if payload.get("type") == "renamed" else ""
        )
        if " " in name:
            phase = self.phase(name.split(" ", 1)[0])
            now = time.perf_counter()
            if event_id in phase.ids:
                phase.duplicates += 1
            else:
                phase.ids.add(event_id)
                phase.first = phase.first or now
                phase.last = now
        await _respond(send, 204, b"")

    async def until(self, phase: str, count: int) -> None:
        """Until `count` unique ids of `phase` are in, or none came for `DELIVERY_STALL_S`."""
        seen, progressed = -1, time.perf_counter()
        while len(self.phase(phase).ids) < count:
            if len(self.phase(phase).ids) != seen:
                seen, progressed = len(self.phase(phase).ids), time.perf_counter()
            elif time.perf_counter() - progressed > DELIVERY_STALL_S:
                return
            await asyncio.sleep(0.01)


async def _respond(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"text/plain")] if body else []
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


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
    registry: Registry, token: str, space_id: str, phase: str, changes: int, writers: int
) -> Burst:
    connections = [await Http.open(registry.port) for _ in range(writers)]
    counter = iter(range(changes))
    api_ms: list[float] = []
    errors = 0
    last_answer = 0.0
    cpu_before = registry.cpu_s()

    async def writer(conn: Http) -> None:
        nonlocal errors, last_answer
        for n in counter:
            started = time.perf_counter()
            status, _ = await conn.json(
                "PATCH", f"/graph/v1.0/drives/{space_id}", token, {"name": f"{phase} {n}"}
            )
            last_answer = time.perf_counter()
            if status != 200:
                errors += 1
            else:
                api_ms.append((last_answer - started) * 1000)

    began = time.perf_counter()
    try:
        await asyncio.gather(*(writer(c) for c in connections))
    finally:
        for conn in connections:
            conn.close()
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


async def outbox(
    registry: Registry, token: str, space_id: str, changes: int, writers: int
) -> Outbox:
    receiver = Receiver(WEBHOOK_SECRET)
    receiver_port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            receiver,
            host=HOST,
            port=receiver_port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
    )
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if serving.done():
                raise SystemExit("the webhook receiver did not start")
            await asyncio.sleep(0.01)
        conn = await Http.open(registry.port)
        try:
            status, made = await conn.json(
                "POST",
                "/api/v1/subscriptions",
                token,
                {
                    "callbackUrl": f"http://{HOST}:{receiver_port}/hook",
                    "secret": WEBHOOK_SECRET,
                    "leaseSeconds": 3600,
                    "drives": [space_id],
                },
            )
        finally:
            conn.close()
        if status != 201:
            raise SystemExit(f"subscribing answered {status}: {made}")

        # Live: deliveries while the renames come in.
        cpu_before, began = registry.cpu_s(), time.perf_counter()
        live = await burst(registry, token, space_id, "live", changes, writers)
        await receiver.until("live", live.accepted)
        phase = receiver.phase("live")
        result = Outbox(
            live,
            len(phase.ids),
            phase.first,
            phase.last,
            phase.duplicates,
            receiver.bad_signatures,
            registry.cpu_s() - cpu_before,
            time.perf_counter() - began,
        )

        # Drain: the receiver holds the first delivery while a backlog builds (for less than
        # the registry's 5 s read timeout), then lets go; the outbox alone sets the pace.
        drain_changes = max(1, min(changes, int(live.rate * DRAIN_BUILD_S)))
        receiver.hold = asyncio.Event()
        making = asyncio.create_task(
            burst(registry, token, space_id, "drain", drain_changes, writers)
        )
        try:
            await asyncio.wait_for(receiver.held.wait(), DRAIN_BUILD_S)
        except TimeoutError:
            receiver.hold.set()
            await making
            return result  # no delivery came to hold: report the live figures only
        await asyncio.wait({making}, timeout=HOLD_MAX_S)
        result.drain_overlap = not making.done()
        released = time.perf_counter()
        cpu_before = registry.cpu_s()
        receiver.hold.set()
        drain = await making
        result.drain_backlog = drain.accepted - len(receiver.phase("drain").ids)
        await receiver.until("drain", drain.accepted)
        phase = receiver.phase("drain")
        result.drain = drain
        result.drain_received = len(phase.ids)
        result.drain_s = phase.last - released
        result.drain_cpu_s = registry.cpu_s() - cpu_before
        result.duplicates += phase.duplicates
        result.bad_signatures = receiver.bad_signatures
        return result
    finally:
        server.should_exit = True
        await serving


# ---------------------------------------------------------------- 3b. the trivial baseline


@dataclass
class Floor:
    """A fresh registry's RSS before and after N idle TCP connections that sent nothing:
    what uvicorn itself holds per connection, before any request or SSE stream."""

    n: int
    rss_before_kb: int
    rss_after_kb: int
    held: int  # sockets the server held beyond its baseline

    @property
    def per_connection_kb(self) -> float:
        return (self.rss_after_kb - self.rss_before_kb) / self.n


async def idle_floor(n: int) -> Floor:
    directory = Path(tempfile.mkdtemp(prefix="spacereg-bench-floor-"))
    registry = Registry(directory, free_port())
    loop = asyncio.get_running_loop()
    transports: list[asyncio.BaseTransport] = []
    try:
        registry.start()
        await registry.wait_ready()
        await health_load(registry.port, 8, 0.5)
        await asyncio.sleep(IDLE_BEFORE_RSS_S)
        rss0, fds0 = registry.status_kb("VmRSS"), registry.open_fds()
        while len(transports) < n:
            batch = min(OPEN_BATCH, n - len(transports))
            made = await asyncio.gather(
                *(
                    loop.create_connection(asyncio.Protocol, HOST, registry.port)
                    for _ in range(batch)
                )
            )
            transports.extend(transport for transport, _ in made)
            await asyncio.sleep(0.05)
        for _ in range(100):  # until the server has accepted them all
            if registry.open_fds() - fds0 >= n:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(IDLE_BEFORE_RSS_S)
        return Floor(n, rss0, registry.status_kb("VmRSS"), registry.open_fds() - fds0)
    finally:
        for transport in transports:
            transport.close()
        registry.stop()
        shutil.rmtree(directory, ignore_errors=True)


# ---------------------------------------------------------------- the run


@dataclass
class Report:
    cores: int
    load: tuple[float, float, float]
    settings: list[str] = field(default_factory=list)
    health: Load | None = None
    put: PutResult | None = None
    fanouts: list[Fanout] = field(default_factory=list)
    memory: Memory | None = None
    floor: Floor | None = None
    outbox: Outbox | None = None


async def run(args: argparse.Namespace, report: Report) -> None:
    directory = Path(tempfile.mkdtemp(prefix="spacereg-bench-notify-"))
    registry = Registry(directory, free_port())
    try:
        registry.start()
        await registry.wait_ready()
        report.settings.append(
            f"open files: bench {'/'.join(map(str, resource.getrlimit(resource.RLIMIT_NOFILE)))}, "
            f"registry {registry.nofile()}"
        )
        admin = registry.token("admin")
        conn = await Http.open(registry.port)
        try:
            status, made = await conn.json(
                "POST", "/graph/v1.0/drives", admin, {"name": "Notify bench"}
            )
        finally:
            conn.close()
        if status != 201:
            raise SystemExit(f"creating the project space answered {status}: {made}")
        space_id = str(made["id"])
        print(f"registry pid {registry.pid} on port {registry.port}, space {space_id}", flush=True)

        # 5. yardstick
        await health_load(registry.port, HEALTH_CONCURRENCY, 0.5)
        report.health = await health_load(registry.port, HEALTH_CONCURRENCY, args.health_s)
        print(f"  healthz: {report.health.rps:,.0f} req/s", flush=True)

        # 1. PUT -> SSE
        report.put = await put_latency(registry, admin, space_id, args.writes, args.warmup)
        print(
            f"  PUT->SSE: p50 {pct(report.put.event_ms, 50):.1f} ms  "
            f"p99 {pct(report.put.event_ms, 99):.1f} ms",
            flush=True,
        )

        # 2./3. fan-out and memory: warm the SSE path up, settle, then open the subscribers in
        # steps (1,000, then up to 10,000), reading the server's memory once each step is idle.
        warm, _ = await open_subscribers(registry.port, admin, min(OPEN_BATCH, max(args.fanout)))
        await fanout(registry.port, admin, space_id, warm, "warmup", 0, 0.0)
        close_all(warm)
        del warm
        await asyncio.sleep(IDLE_BEFORE_RSS_S)
        report.memory = Memory([(0, registry.status_kb("VmRSS"), registry.pss_kb())])
        subs: list[Subscriber] = []
        try:
            for n in args.fanout:
                more, open_s = await open_subscribers(registry.port, admin, n - len(subs))
                subs.extend(more)
                print(
                    f"  opened {len(more):,} more SSE connections in {open_s:.1f} s; the server "
                    f"holds {registry.open_fds():,} file descriptors",
                    flush=True,
                )
                await asyncio.sleep(IDLE_BEFORE_RSS_S)
                report.memory.points.append((n, registry.status_kb("VmRSS"), registry.pss_kb()))
                result = await fanout(
                    registry.port, admin, space_id, subs, str(n), len(more), open_s
                )
                report.fanouts.append(result)
                print(
                    f"  fan-out {n:,}: last after {result.last_ms:.0f} ms, "
                    f"missing {result.missing}",
                    flush=True,
                )
        finally:
            close_all(subs)
            del subs
        await asyncio.sleep(IDLE_BEFORE_RSS_S)
        report.memory.rss_closed_kb = registry.status_kb("VmRSS")

        # 4. outbox
        report.outbox = await outbox(registry, admin, space_id, args.changes, args.writers)
        print(
            f"  outbox: {report.outbox.received:,}/{args.changes:,} delivered live, "
            f"{report.outbox.delivery_rate:,.0f}/s; backlog drained at "
            f"{report.outbox.drain_rate:,.0f}/s",
            flush=True,
        )
    except BaseException:
        if registry.process is not None:
            print(f"\nregistry log (tail):\n{registry.tail()}", file=sys.stderr)
        raise
    finally:
        registry.stop()
        shutil.rmtree(directory, ignore_errors=True)
    if not args.no_floor:
        report.floor = await idle_floor(max(args.fanout))
        print(f"  idle TCP floor: {report.floor.per_connection_kb:.1f} KB/conn", flush=True)


def print_report(report: Report, args: argparse.Namespace) -> None:
    print("\n== settings ==")
    print(
        f"  cores: {report.cores}  python {platform.python_version()}  {platform.machine()}  "
        f"load average (1 min) at start {report.load[0]:.2f}, at end {os.getloadavg()[0]:.2f}"
    )
    for line in report.settings:
        print(f"  {line}")
    print(
        "  registry: 1 uvicorn process (uvloop, httptools), SQLite, embedded IdP, local storage; "
        "bench client: one asyncio process (uvloop) on the same machine"
    )
    print(
        f"  writes {args.writes} (+{args.warmup} warm-up)  fan-out {args.fanout}  "
        f"changes {args.changes} by {args.writers} writers  healthz {args.health_s:g} s "
        f"x {HEALTH_CONCURRENCY} connections"
    )
    print(
        f"  SSE opened {OPEN_BATCH} at a time (uvicorn backlog 2048), server SSE keep-alive "
        f"15 s (default); RSS read after {IDLE_BEFORE_RSS_S:g} s idle; outbox backlog built "
        f"for up to {DRAIN_BUILD_S:g}+{HOLD_MAX_S:g} s with the first delivery held"
    )

    print("\n== figures ==")
    rows: list[tuple[str, str, str, str]] = []
    if report.health is not None:
        h = report.health
        rows.append(
            (
                "healthz (yardstick)",
                f"{h.rps:,.0f} req/s; p50 {pct(h.latencies_ms, 50):.2f} ms "
                f"p99 {pct(h.latencies_ms, 99):.2f} ms"
                + (f"; {h.errors} errors" if h.errors else ""),
                "",
                "",
            )
        )
    if report.put is not None:
        p = report.put
        p99 = pct(p.event_ms, 99)
        ok = p99 < TARGET_PUT_P99_MS and not p.missed and not p.errors
        rows.append(
            (
                f"PUT->SSE, {len(p.event_ms)} PUTs",
                f"p50 {pct(p.event_ms, 50):.1f}  p90 {pct(p.event_ms, 90):.1f}  "
                f"p99 {p99:.1f}  max {max(p.event_ms, default=0):.1f} ms",
                f"p99 < {TARGET_PUT_P99_MS:.0f} ms",
                _mark(ok),
            )
        )
        rows.append(
            (
                "  of which PUT response",
                f"p50 {pct(p.response_ms, 50):.1f}  p99 {pct(p.response_ms, 99):.1f} ms; "
                f"{len(p.event_ms) / p.wall_s:.0f} PUT+event/s; "
                f"server CPU {p.server_cpu_s / p.wall_s * 100:.0f}%"
                + (f"; {p.missed} events missed" if p.missed else "")
                + (f"; {p.errors} PUT errors" if p.errors else ""),
                "",
                "",
            )
        )
    for f in report.fanouts:
        graded = f.n >= TARGET_FANOUT_N
        ok = f.last_ms <= TARGET_FANOUT_S * 1000 and not f.missing
        rows.append(
            (
                f"fan-out to {f.n:,} SSE",
                f"all after {f.last_ms:.0f} ms; per client p50 {pct(f.arrivals_ms, 50):.0f}  "
                f"p99 {pct(f.arrivals_ms, 99):.0f}  max {f.last_ms:.0f} ms"
                + (f"; {f.missing} MISSING" if f.missing else ""),
                f"all < {TARGET_FANOUT_S * 1000:.0f} ms" if graded else "",
                _mark(ok) if graded else "",
            )
        )
        rows.append(
            (
                "  of which",
                f"rename response {f.change_ms:.1f} ms; opening {f.opened:,} took "
                f"{f.open_s:.1f} s ({f.opened / f.open_s:,.0f} conn/s)"
                if f.open_s
                else "",
                "",
                "",
            )
        )
    if report.memory is not None:
        m = report.memory
        rows.append(
            (
                f"memory per idle SSE ({m.n:,})",
                f"RSS {m.per_connection_kb:.1f} KB  PSS {m.pss_per_connection_kb:.1f} KB "
                f"per connection",
                f"< {TARGET_KB_PER_CONNECTION:.0f} KB",
                _mark(m.per_connection_kb < TARGET_KB_PER_CONNECTION),
            )
        )
        marginal = m.marginal_kb
        steps = ", ".join(f"{n:,}: {rss / 1024:.1f} MB" for n, rss, _ in m.points[1:])
        rows.append(
            (
                "  server RSS",
                f"baseline {m.points[0][1] / 1024:.1f} MB; open {steps}; all closed "
                f"{m.rss_closed_kb / 1024:.1f} MB"
                + (
                    f"; marginal {marginal:.1f} KB/conn ({m.points[-2][0]:,}->{m.n:,})"
                    if marginal is not None
                    else ""
                ),
                "",
                "",
            )
        )
    if report.floor is not None:
        fl = report.floor
        rows.append(
            (
                "  trivial baseline",
                f"{fl.per_connection_kb:.1f} KB per idle TCP connection that sent nothing "
                f"(fresh registry, {fl.n:,} held: {fl.held:,} sockets; RSS "
                f"{fl.rss_before_kb / 1024:.1f} -> {fl.rss_after_kb / 1024:.1f} MB)",
                "",
                "",
            )
        )
    if report.outbox is not None:
        o = report.outbox
        live = o.live
        rows.append(
            (
                f"outbox, {live.changes:,} renames",
                f"{o.delivery_rate:,.0f} deliveries/s (first to last); last delivery "
                f"{o.lag_s * 1000:.0f} ms after the last change answered",
                "",
                "",
            )
        )
        rows.append(
            (
                "  API change rate",
                f"{live.rate:,.0f} renames/s with {live.writers} clients; p50 "
                f"{pct(live.api_ms, 50):.1f}  p99 {pct(live.api_ms, 99):.1f} ms"
                + (f"; {live.errors} errors" if live.errors else "")
                + f"; server CPU {o.server_cpu_s / o.wall_s * 100:.0f}% over {o.wall_s:.1f} s",
                "",
                "",
            )
        )
        if o.drain is not None:
            rows.append(
                (
                    "  outbox alone (backlog)",
                    f"{o.drain_rate:,.0f} deliveries/s draining {o.drain_backlog:,} queued "
                    f"in {o.drain_s:.2f} s; server CPU {o.drain_cpu_s / o.drain_s * 100:.0f}%"
                    + ("; renames still coming in during the drain" if o.drain_overlap else "")
                    if o.drain_s > 0
                    else "no backlog drained",
                    "",
                    "",
                )
            )
        wanted = live.accepted + (o.drain.accepted if o.drain is not None else 0)
        got = o.received + o.drain_received
        rows.append(
            (
                "  delivered",
                f"{got:,}/{wanted:,} unique ids, {o.duplicates} repeats, "
                f"{o.bad_signatures} bad signatures",
                "all, signed",
                _mark(got == wanted and not o.bad_signatures),
            )
        )
    width = max(len(r[0]) for r in rows) if rows else 0
    for label, figure, target, mark in rows:
        suffix = f"   [{target}] {mark}" if target else ""
        print(f"  {label:<{width}}  {figure}{suffix}")

    print("\n== targets ==")
    for label, _, target, mark in rows:
        if target:
            print(f"  {mark}  {label.strip()}: {target}")
    marginal = report.memory.marginal_kb if report.memory is not None else None
    if marginal is not None and marginal >= TARGET_KB_PER_CONNECTION:
        print(
            f"  note: one more idle SSE connection costs {marginal:.1f} KB at this size, at or "
            f"over the {TARGET_KB_PER_CONNECTION:.0f} KB target: the memory figure is borderline"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer writes and changes")
    parser.add_argument("--writes", type=int, help="sequential PUTs (default 500; quick 200)")
    parser.add_argument("--warmup", type=int, default=20, help="PUTs before timing")
    parser.add_argument(
        "--fanout", default="1000,10000", help="comma-separated SSE subscriber counts"
    )
    parser.add_argument("--changes", type=int, help="renames for the outbox (default 2000)")
    parser.add_argument("--writers", type=int, default=8, help="concurrent renaming clients")
    parser.add_argument("--health-s", type=float, default=3.0, help="seconds of /healthz load")
    parser.add_argument(
        "--no-floor", action="store_true", help="skip the idle-TCP memory baseline (a 2nd server)"
    )
    args = parser.parse_args()
    args.writes = args.writes or (200 if args.quick else 500)
    args.changes = args.changes or (500 if args.quick else 2000)
    if args.quick:
        args.health_s = min(args.health_s, 2.0)
    args.fanout = sorted({int(n) for n in args.fanout.split(",") if n.strip()})
    if not args.fanout or min(args.fanout) < 1:
        parser.error("--fanout needs positive counts")
    soft, _hard = raise_nofile()
    if soft < max(args.fanout) + 100:
        parser.error(f"the open-files limit ({soft}) is too low for {max(args.fanout)} clients")
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    report = Report(os.cpu_count() or 1, os.getloadavg())
    started = time.perf_counter()
    try:
        asyncio.run(run(args, report))
    finally:
        print_report(report, args)
        print(f"\n(run took {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
