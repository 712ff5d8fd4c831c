"""Benchmark of change push between registries: two registries (`spacereg serve`, each its own
process, as deployed) peered over TLS on loopback. Einstein shares a folder of his space at
zurich with Marie at paris, who accepts it. Then, one write at a time, Einstein PUTs a small
file into the shared folder over WebDAV, and the time is taken from sending the PUT until
Marie's SSE client at paris gets the `content` event naming the file at her mountpoint (zurich
pushes it through its outbox, paris applies it and streams it); after each, the same for a
file outside the shared folder, whose event reaches Einstein's own SSE client at zurich (a
local space: the measure without the hop). p50 and p99 of each (target: federated p99 <
250 ms).

    .venv/bin/python bench/federated_changes.py [--writes N] [--warmup N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.notify.put_sse import EVENT_TIMEOUT_S, watch_content
from bench.shares import accepted, registries
from registry.runtime.demo_ca import CertFiles

TARGET_P99_MS = 250.0
SUBSCRIBED_WITHIN_S = 30.0
Waiting = dict[str, asyncio.Future[float]]


async def timed_put(client: httpx2.AsyncClient, url: str, path: str, waiting: Waiting) -> float:
    """Milliseconds from sending a PUT of `url` until an event names `path`."""
    future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
    waiting[path] = future
    sent = time.perf_counter()
    response = await client.put(url, content=b"x" * 64)
    assert response.status_code in (201, 204), response.status_code
    try:
        return (await asyncio.wait_for(future, EVENT_TIMEOUT_S) - sent) * 1000
    finally:
        waiting.pop(path, None)


async def subscribed(einstein: httpx2.AsyncClient, drive: str, waiting: Waiting) -> None:
    """Write into the shared folder until paris hears of it (its subscription is in place)."""
    deadline = time.monotonic() + SUBSCRIBED_WITHIN_S
    for attempt in range(1000):
        url = f"/dav/spaces/{drive}/pushed/first-{attempt}.txt"
        with contextlib.suppress(TimeoutError):
            await timed_put(einstein, url, f"/first-{attempt}.txt", waiting)
            return
        if time.monotonic() > deadline:
            break
    raise SystemExit("paris never heard of a write: no subscription")


async def measure(zurich: Any, paris: Any, certs: CertFiles, args: Any) -> None:
    recipient = f"marie@{paris.url.removeprefix('https://')}"
    async with zurich.client("einstein", certs) as einstein, paris.client("marie", certs) as marie:
        drive = (await einstein.get("/graph/v1beta1/me/drive")).json()["id"]
        for folder in ("pushed", "local"):
            assert (await einstein.request("MKCOL", f"/dav/spaces/{drive}/{folder}")).is_success
        _waiting, mountpoint = await accepted(einstein, marie, drive, "pushed", recipient)
        federated: Waiting = {}
        local: Waiting = {}
        async with (
            marie.sse("/api/v1/events", timeout=httpx2.Timeout(30, read=None)) as at_paris,
            einstein.sse("/api/v1/events", timeout=httpx2.Timeout(30, read=None)) as at_zurich,
        ):
            watchers = [
                asyncio.create_task(watch_content(at_paris, mountpoint, federated)),
                asyncio.create_task(watch_content(at_zurich, drive, local)),
            ]
            try:
                await subscribed(einstein, drive, federated)
                pushed_ms, local_ms = [], []
                for n in range(args.warmup + args.writes):
                    name = f"f{n:05d}.txt"
                    pushed = await timed_put(
                        einstein, f"/dav/spaces/{drive}/pushed/{name}", f"/{name}", federated
                    )
                    mine = await timed_put(
                        einstein, f"/dav/spaces/{drive}/local/{name}", f"/local/{name}", local
                    )
                    if n >= args.warmup:
                        pushed_ms.append(pushed)
                        local_ms.append(mine)
            finally:
                for watcher in watchers:
                    watcher.cancel()
    report("zurich PUT -> Marie's SSE at paris (federated)", pushed_ms, TARGET_P99_MS)
    report("zurich PUT -> Einstein's SSE at zurich (local)", local_ms, None)


def report(label: str, samples: list[float], target: float | None) -> None:
    p50 = statistics.median(samples)
    p99 = statistics.quantiles(samples, n=100, method="inclusive")[98]
    verdict = "" if target is None else f" (target p99 < {target:.0f} ms) "
    verdict += "" if target is None else ("PASS" if p99 < target else "MISS")
    print(
        f"{label}, {len(samples)} writes: p50 {p50:.1f} ms, p99 {p99:.1f} ms,"
        f" max {max(samples):.1f} ms{verdict}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root, registries(Path(root)) as (zurich, paris, certs):
        asyncio.run(measure(zurich, paris, certs, args))


if __name__ == "__main__":
    main()
