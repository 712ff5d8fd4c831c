"""Benchmark what storage providers' reports cost the registry as it grows: applying one
content change (each write through WebDAV, each edit a watcher sees), and the start-up
reconciliation when nothing changed while the registry was down.

For each size, seeds a fresh database with that many spaces (`bench/common/seed.py`), held by
the local provider with an empty folder each, and records the provider's ETag and usage of
every space as the registry would. Then, in this process, it applies `--changes` content
changes, one at a time, to spaces spread over the table (`ProviderEvents._content_changed`,
what the registry's provider-events worker runs for each), and times the reconciliation of
every space (after one that puts the changed spaces back, so that nothing changed: a restart).
It prints the percentiles, the spaces reconciled per second, and the ratios of the largest
size to the smallest.

    .venv/bin/python bench/provider_events.py [--sizes 1000,200000] [--changes 300]
                                              [--database-url postgresql+asyncpg://.../scratch]

A PostgreSQL URL must name a scratch database: its registry tables are dropped and re-created.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import bindparam, select, update

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common.load import mark, pct
from bench.common.seed import seed, write_config
from common.waiting import cancel_all
from registry.core.models import Space, table
from registry.runtime.settings import load_settings
from registry.runtime.wiring import Services, build, closing
from storage import Change

TARGET_GROWTH = 1.2  # a change at the largest size costs at most this much more
UPDATE_ROWS = 5_000

spaces = table(Space)


@dataclass
class Result:
    size: int
    change_ms: list[float]
    reconcile_s: float

    def pct(self, p: int) -> float:
        return pct(self.change_ms, p)


async def held_by_local(services: Services) -> list[str]:
    """Give every seeded space to the local provider, with a folder and the provider's ETag
    and usage recorded, as if the registry had made them; returns their ids."""
    provider = services.providers["local"]
    root = services.settings.data_dir / "spaces"
    async with services.engine.begin() as conn:
        await conn.execute(update(spaces).values(provider="local"))
        ids = [row.id for row in await conn.execute(select(spaces.c.id).order_by(spaces.c.id))]
    for space_id in ids:
        (root / space_id).mkdir(parents=True, exist_ok=True)
    for start in range(0, len(ids), UPDATE_ROWS):
        infos = [
            await provider.get_space(space_id) for space_id in ids[start : start + UPDATE_ROWS]
        ]
        async with services.engine.begin() as conn:
            await conn.execute(
                update(spaces)
                .where(spaces.c.id == bindparam("space_id"))
                .values(etag=bindparam("new_etag"), quota_used=bindparam("new_used")),
                [{"space_id": i.space_id, "new_etag": i.etag, "new_used": i.used} for i in infos],
            )
    return ids


async def run_size(size: int, args: argparse.Namespace) -> Result:
    directory = Path(tempfile.mkdtemp(prefix=f"spacereg-bench-events-{size}-"))
    try:
        settings = load_settings(write_config(directory, 1, args.database_url), env={})
        backend = settings.database_url.split(":")[0]
        print(f"\n== {size:,} spaces ({backend}) ==", flush=True)
        _user, seed_s = await seed(settings, size, fresh=args.database_url is None)
        async with closing(build(settings)) as services:
            started = time.perf_counter()
            ids = await held_by_local(services)
            print(
                f"  seeded in {seed_s:.1f} s, folders and ETags in "
                f"{time.perf_counter() - started:.1f} s",
                flush=True,
            )
            events = services.provider_events
            stride = max(1, len(ids) // args.changes)
            change_ms = []
            for n in range(args.changes):
                change = Change(ids[n * stride % len(ids)], f'"bench-{n}"', n, ("/f.txt",))
                started = time.perf_counter()
                await events._content_changed("local", change)
                change_ms.append((time.perf_counter() - started) * 1000)
            applying = asyncio.create_task(events.run())
            try:
                await events.reconcile(services.providers)  # puts back the changed ones
                started = time.perf_counter()
                await events.reconcile(services.providers)  # timed: nothing changed
                reconcile_s = time.perf_counter() - started
            finally:
                await cancel_all([applying])
        result = Result(size, change_ms, reconcile_s)
        print(
            f"  content change: p50 {result.pct(50):.2f} ms  p99 {result.pct(99):.2f} ms  "
            f"({args.changes} changes)",
            flush=True,
        )
        print(
            f"  reconciliation, nothing changed: {reconcile_s:.1f} s "
            f"({size / reconcile_s:,.0f} spaces/s)",
            flush=True,
        )
        return result
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def report(results: list[Result]) -> None:
    if len(results) < 2:
        return
    small, large = results[0], results[-1]
    print("\n== targets ==")
    for p in (50, 99):
        growth = large.pct(p) / small.pct(p)
        print(
            f"  {large.size:,}/{small.size:,} content change, p{p} = {growth:.2f} "
            f"(target <= {TARGET_GROWTH})  {mark(growth <= TARGET_GROWTH)}"
        )
    rate = (large.size / large.reconcile_s) / (small.size / small.reconcile_s)
    print(f"  {large.size:,}/{small.size:,} reconciliation, spaces/s = {rate:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,200000", help="comma-separated space counts")
    parser.add_argument("--changes", type=int, default=300, help="content changes timed")
    parser.add_argument("--database-url", help="a scratch PostgreSQL database (default SQLite)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    report([asyncio.run(run_size(size, args)) for size in sizes])


if __name__ == "__main__":
    main()
