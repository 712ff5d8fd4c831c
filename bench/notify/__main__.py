"""`python -m bench.notify`: runs the phases in order against one registry and prints the
report (see the package's docstring)."""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import time

import bench.notify
from bench.common.load import install_uvloop, pct
from bench.notify.fanout import OPEN_BATCH, fanout_steps
from bench.notify.health import healthz
from bench.notify.memory import idle_floor
from bench.notify.outbox import outbox
from bench.notify.put_sse import put_latency
from bench.notify.report import Report, print_report
from bench.notify.server import create_space, raise_nofile, running_registry


async def run(args: argparse.Namespace, report: Report) -> None:
    async with running_registry() as registry:
        report.settings.append(
            f"open files: bench {'/'.join(map(str, resource.getrlimit(resource.RLIMIT_NOFILE)))}, "
            f"registry {registry.nofile()}"
        )
        admin = await asyncio.to_thread(registry.token, "admin")
        async with registry.api(admin) as api:
            space_id = await create_space(api, "Notify bench")
        print(f"registry pid {registry.pid} on port {registry.port}, space {space_id}", flush=True)

        # 5. yardstick
        await healthz(registry.port, 0.5)
        report.health = await healthz(registry.port, args.health_s)
        print(f"  healthz: {report.health.rps:,.0f} req/s", flush=True)

        # 1. PUT -> SSE
        report.put = await put_latency(registry, admin, space_id, args.writes, args.warmup)
        event_ms = report.put.event_ms
        print(
            f"  PUT->SSE: p50 {pct(event_ms, 50):.1f} ms  p99 {pct(event_ms, 99):.1f} ms",
            flush=True,
        )

        # 2./3. fan-out and memory
        report.fanouts, report.memory = await fanout_steps(registry, admin, space_id, args.fanout)

        # 4. outbox
        report.outbox = await outbox(registry, admin, space_id, args.changes, args.writers)
        print(
            f"  outbox: {report.outbox.received:,}/{args.changes:,} delivered live, "
            f"{report.outbox.delivery_rate:,.0f}/s; backlog drained at "
            f"{report.outbox.drain_rate:,.0f}/s",
            flush=True,
        )
    if not args.no_floor:
        report.floor = await idle_floor(max(args.fanout), OPEN_BATCH)
        print(f"  idle TCP floor: {report.floor.per_connection_kb:.1f} KB/conn", flush=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.notify", description=(bench.notify.__doc__ or "").split("\n")[0]
    )
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
    return args


def main() -> None:
    args = parse_args()
    install_uvloop()
    report = Report(os.cpu_count() or 1, os.getloadavg())
    started = time.perf_counter()
    try:
        asyncio.run(run(args, report))
    finally:
        print_report(report, args)
        print(f"\n(run took {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
