"""1. PUT->SSE: sequential WebDAV PUTs of a small file on one keep-alive connection; for each,
the time from sending the PUT until an SSE client gets the `content` event naming its path."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

import httpx2
import orjson

from bench.notify.server import Registry

EVENT_TIMEOUT_S = 10.0


@dataclass
class PutResult:
    writes: int
    event_ms: list[float]
    response_ms: list[float]
    missed: int
    errors: int
    wall_s: float
    server_cpu_s: float


async def watch_content(
    source: httpx2.EventSource, space_id: str, waiting: dict[str, asyncio.Future[float]]
) -> None:
    """Resolves the future waiting for each path a `content` event of the space names."""
    async for event in source:
        if event.event != "content":
            continue
        arrived = time.perf_counter()
        change = orjson.loads(event.data)
        if change.get("driveId") != space_id:
            continue
        for path in change.get("data", {}).get("paths", ()):
            future = waiting.pop(path, None)
            if future is not None and not future.done():
                future.set_result(arrived)


async def put_latency(
    registry: Registry, token: str, space_id: str, writes: int, warmup: int
) -> PutResult:
    loop = asyncio.get_running_loop()
    waiting: dict[str, asyncio.Future[float]] = {}
    body = b"x" * 64
    event_ms: list[float] = []
    response_ms: list[float] = []
    missed = errors = 0
    async with registry.api(token) as api, api.sse("/api/v1/events") as source:
        if source.response.status_code != 200:
            raise SystemExit(f"SSE answered {source.response.status_code}")
        watching = asyncio.create_task(watch_content(source, space_id, waiting))
        cpu_before = registry.cpu_s()
        began = time.perf_counter()
        try:
            for n in range(warmup + writes):
                path = f"/bench-put-{n:05d}.txt"
                future: asyncio.Future[float] = loop.create_future()
                waiting[path] = future
                sent = time.perf_counter()
                response = await api.put(
                    f"/dav/spaces/{space_id}{path}",
                    content=body,
                    headers={"Content-Type": "text/plain"},
                )
                answered = time.perf_counter()
                if response.status_code not in (200, 201, 204):
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
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching
    return PutResult(
        writes, event_ms, response_ms, missed, errors, wall, registry.cpu_s() - cpu_before
    )
