"""Benchmark `GET /graph/v1.0/me/drives`: latency that does not grow with the registry's size.

For each size, seeds a fresh database with that many spaces (one manager each, a fake user) of
which the bench user (einstein) sees exactly 100, starts the registry as its own process on
127.0.0.1, and drives it with a small asyncio HTTP/1.1 keep-alive client. It prints latency
percentiles, requests/s, the server's own time (`Server-Timing`), the in-process floor (the same
listing plus JSON encoding, timed alone in this process), and the ratios against the targets.

    .venv/bin/python bench/drives.py [--sizes 10000,1000000] [--concurrency 32] [--duration 5]
                                     [--database-url postgresql+asyncpg://.../scratch]
                                     [--workers N]  (default: one per core)

A PostgreSQL URL must name a scratch database: its registry tables are dropped and re-created.
Seeding is in `bench/common/seed.py`, the load generator in `bench/common/load.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common.load import Load, get_request, install_uvloop, load, mark
from bench.common.seed import USER, VISIBLE, seed, user_token, write_config
from registry.access.principal import Principal
from registry.changes.unit_of_work import UnitOfWork
from registry.core.clock import SYSTEM_CLOCK
from registry.runtime.db import create_engine
from registry.runtime.settings import Settings, load_settings
from registry.spaces.drive_json import drive
from registry.spaces.service import SpaceService
from storage import load_provider
from tests.processes import ServiceProcess, clean_env, wait_until
from tests.servers import free_port

MAX_REQUESTS = 20_000
SEQUENTIAL_S = 2.0
WARMUP_S = 1.0
FLOOR_ITERATIONS = 500
TARGET_SERVER_OVER_FLOOR = 1.5
TARGET_GROWTH = 1.2
TARGET_P99_MS = 30.0
SETTLE_TIMEOUT_S = 300


@dataclass
class Result:
    size: int
    seed_s: float
    floor_mean_ms: float
    floor_p50_ms: float
    body_bytes: int
    sequential: Load
    health: Load
    drives: Load


# ---------------------------------------------------------------- in-process floor


async def floor(settings: Settings, user_id: str, iterations: int) -> tuple[float, float, int]:
    """The listing (SQL, grouping, drive objects, JSON) timed alone: (mean ms, p50 ms, bytes)."""
    engine = create_engine(settings.database_url)
    provider = load_provider("local", "local", {"root": str(settings.data_dir / "spaces")})
    service = SpaceService(UnitOfWork(engine), {"local": provider}, 0, 0, clock=SYSTEM_CLOCK)
    principal = Principal(user_id, USER.username, USER.display_name, USER.groups, False)

    async def once() -> bytes:
        views, _more = await service.list_visible(principal, None, None, 0)
        return orjson.dumps({"value": [drive(v, settings.base_url, False) for v in views]})

    try:
        body = b""
        for _ in range(50):
            body = await once()
        count = len(orjson.loads(body)["value"])
        if count != VISIBLE:
            raise SystemExit(f"the bench user sees {count} drives, not {VISIBLE}")
        times = []
        for _ in range(iterations):
            started = time.perf_counter()
            await once()
            times.append((time.perf_counter() - started) * 1000)
    finally:
        await engine.dispose()
        await provider.close()
    return statistics.fmean(times), statistics.median(times), len(body)


# ---------------------------------------------------------------- one size


async def settled(server: ServiceProcess) -> None:
    """Wait for the server's start-up reconciliation to end: at a million spaces it reads
    every space's row, which would compete with the first requests measured."""
    assert server.process is not None
    reconciled = await asyncio.to_thread(
        wait_until,
        lambda: "job reconcile finished" in server.output(),
        server.process,
        SETTLE_TIMEOUT_S,
        0.2,
    )
    if not reconciled:
        raise SystemExit(f"the server did not finish reconciling in {SETTLE_TIMEOUT_S} s")


async def run_size(size: int, args: argparse.Namespace) -> Result:
    directory = Path(tempfile.mkdtemp(prefix=f"spacereg-bench-{size}-"))
    try:
        port = free_port()
        config = write_config(directory, port, args.database_url)
        settings = load_settings(config, env={})
        backend = settings.database_url.split(":")[0]
        print(f"\n== {size:,} spaces ({backend}, {args.workers} workers) ==", flush=True)
        user_id, seed_s = await seed(settings, size, fresh=args.database_url is None)
        print(f"  seeded in {seed_s:.1f} s", flush=True)
        floor_mean, floor_p50, body_bytes = await floor(settings, user_id, FLOOR_ITERATIONS)
        print(
            f"  floor (in process): mean {floor_mean:.2f} ms  p50 {floor_p50:.2f} ms  "
            f"body {body_bytes:,} bytes",
            flush=True,
        )
        token = user_token(settings)
        server = ServiceProcess(
            ["--config", str(config), "serve", "--no-migrate", "--workers", str(args.workers)],
            port,
            directory / "server.log",
            clean_env(),
        )
        try:
            await asyncio.to_thread(server.start)
            await settled(server)
            drives = get_request("/graph/v1.0/me/drives", port, token)
            health = get_request("/healthz", port)
            await load(port, drives, args.concurrency, WARMUP_S, MAX_REQUESTS)
            sequential = await load(port, drives, 1, SEQUENTIAL_S, MAX_REQUESTS)
            print(sequential.line("drives, 1 client"), flush=True)
            health_load = await load(port, health, args.concurrency, args.duration, MAX_REQUESTS)
            print(health_load.line(f"healthz, {args.concurrency} clients"), flush=True)
            drives_load = await load(port, drives, args.concurrency, args.duration, MAX_REQUESTS)
            print(drives_load.line(f"drives, {args.concurrency} clients"), flush=True)
        finally:
            server.stop()
        return Result(
            size, seed_s, floor_mean, floor_p50, body_bytes, sequential, health_load, drives_load
        )
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# ---------------------------------------------------------------- report


def report(results: list[Result], concurrency: int) -> None:
    print("\n== summary ==")
    header = (
        f"{'spaces':>10} {'seed s':>7} {'floor ms':>9} {'server ms':>10} {'srv/floor':>9} "
        f"{'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} {'req/s':>7} {'healthz req/s':>14}"
    )
    print(header)
    for r in results:
        ratio = r.sequential.mean_server_ms / r.floor_mean_ms
        d = r.drives
        print(
            f"{r.size:>10,} {r.seed_s:>7.1f} {r.floor_mean_ms:>9.2f} "
            f"{r.sequential.mean_server_ms:>10.2f} {ratio:>9.2f} {d.pct(50):>7.2f} "
            f"{d.pct(90):>7.2f} {d.pct(99):>7.2f} {d.rps:>7.0f} {r.health.rps:>14.0f}"
        )
    print("\n== targets ==")
    for r in results:
        ratio = r.sequential.mean_server_ms / r.floor_mean_ms
        print(
            f"  {r.size:>10,}: server time / floor = {ratio:.2f} "
            f"(target <= {TARGET_SERVER_OVER_FLOOR})  {mark(ratio <= TARGET_SERVER_OVER_FLOOR)}"
        )
        p99 = r.drives.pct(99)
        print(
            f"  {r.size:>10,}: p99 at {concurrency} clients = {p99:.2f} ms "
            f"(target < {TARGET_P99_MS:.0f})  {mark(p99 < TARGET_P99_MS)}"
        )
        if r.drives.errors or r.sequential.errors:
            print(f"  {r.size:>10,}: {r.drives.errors + r.sequential.errors} error responses  MISS")
    if len(results) >= 2:
        small, large = results[0], results[-1]
        growth = {
            f"p50 at {concurrency}": large.drives.pct(50) / small.drives.pct(50),
            f"p99 at {concurrency}": large.drives.pct(99) / small.drives.pct(99),
            "sequential mean": large.sequential.mean_ms / small.sequential.mean_ms,
        }
        for label, value in growth.items():
            print(
                f"  {large.size:,}/{small.size:,} latency, {label} = {value:.2f} "
                f"(target <= {TARGET_GROWTH})  {mark(value <= TARGET_GROWTH)}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,1000000", help="comma-separated space counts")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per loaded run")
    parser.add_argument("--database-url", help="a scratch PostgreSQL database (default SQLite)")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="the server's worker processes (default: one per core, as the README advises)",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if any(size < VISIBLE for size in sizes):
        parser.error(f"every size must be at least {VISIBLE}")
    install_uvloop()
    results = [asyncio.run(run_size(size, args)) for size in sizes]
    report(results, args.concurrency)


if __name__ == "__main__":
    main()
