"""The figures of a run, printed as a table and PASS/MISS against the targets."""

from __future__ import annotations

import argparse
import os
import platform
from dataclasses import dataclass, field

from bench.common.load import Load, mark, pct
from bench.notify.fanout import OPEN_BATCH, Fanout
from bench.notify.health import CONCURRENCY
from bench.notify.memory import IDLE_BEFORE_RSS_S, Floor, Memory
from bench.notify.outbox import DRAIN_BUILD_S, HOLD_MAX_S, Outbox
from bench.notify.put_sse import PutResult

TARGET_PUT_P99_MS = 100.0
TARGET_FANOUT_S = 1.0
TARGET_FANOUT_N = 10_000
TARGET_KB_PER_CONNECTION = 20.0

Row = tuple[str, str, str, str]  # label, figure, target, PASS/MISS


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


def _health_rows(h: Load) -> list[Row]:
    errors = f"; {h.errors} errors" if h.errors else ""
    figure = f"{h.rps:,.0f} req/s; p50 {h.pct(50):.2f} ms p99 {h.pct(99):.2f} ms{errors}"
    return [("healthz (yardstick)", figure, "", "")]


def _put_rows(p: PutResult) -> list[Row]:
    p99 = pct(p.event_ms, 99)
    ok = p99 < TARGET_PUT_P99_MS and not p.missed and not p.errors
    return [
        (
            f"PUT->SSE, {len(p.event_ms)} PUTs",
            f"p50 {pct(p.event_ms, 50):.1f}  p90 {pct(p.event_ms, 90):.1f}  "
            f"p99 {p99:.1f}  max {max(p.event_ms, default=0):.1f} ms",
            f"p99 < {TARGET_PUT_P99_MS:.0f} ms",
            mark(ok),
        ),
        (
            "  of which PUT response",
            f"p50 {pct(p.response_ms, 50):.1f}  p99 {pct(p.response_ms, 99):.1f} ms; "
            f"{len(p.event_ms) / p.wall_s:.0f} PUT+event/s; "
            f"server CPU {p.server_cpu_s / p.wall_s * 100:.0f}%"
            + (f"; {p.missed} events missed" if p.missed else "")
            + (f"; {p.errors} PUT errors" if p.errors else ""),
            "",
            "",
        ),
    ]


def _fanout_rows(f: Fanout) -> list[Row]:
    graded = f.n >= TARGET_FANOUT_N
    ok = f.last_ms <= TARGET_FANOUT_S * 1000 and not f.missing
    return [
        (
            f"fan-out to {f.n:,} SSE",
            f"all after {f.last_ms:.0f} ms; per client p50 {pct(f.arrivals_ms, 50):.0f}  "
            f"p99 {pct(f.arrivals_ms, 99):.0f}  max {f.last_ms:.0f} ms"
            + (f"; {f.missing} MISSING" if f.missing else ""),
            f"all < {TARGET_FANOUT_S * 1000:.0f} ms" if graded else "",
            mark(ok) if graded else "",
        ),
        (
            "  of which",
            f"rename response {f.change_ms:.1f} ms; opening {f.opened:,} took "
            f"{f.open_s:.1f} s ({f.opened / f.open_s:,.0f} conn/s)"
            if f.open_s
            else "",
            "",
            "",
        ),
    ]


def _memory_rows(m: Memory) -> list[Row]:
    marginal = m.marginal_kb
    steps = ", ".join(f"{n:,}: {rss / 1024:.1f} MB" for n, rss, _ in m.points[1:])
    return [
        (
            f"memory per idle SSE ({m.n:,})",
            f"RSS {m.per_connection_kb:.1f} KB  PSS {m.pss_per_connection_kb:.1f} KB "
            f"per connection",
            f"< {TARGET_KB_PER_CONNECTION:.0f} KB",
            mark(m.per_connection_kb < TARGET_KB_PER_CONNECTION),
        ),
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
        ),
    ]


def _floor_rows(fl: Floor) -> list[Row]:
    figure = (
        f"{fl.per_connection_kb:.1f} KB per idle TCP connection that sent nothing "
        f"(fresh registry, {fl.n:,} held: {fl.held:,} sockets; RSS "
        f"{fl.rss_before_kb / 1024:.1f} -> {fl.rss_after_kb / 1024:.1f} MB)"
    )
    return [("  trivial baseline", figure, "", "")]


def _outbox_rows(o: Outbox) -> list[Row]:
    live = o.live
    rows: list[Row] = [
        (
            f"outbox, {live.changes:,} renames",
            f"{o.delivery_rate:,.0f} deliveries/s (first to last); last delivery "
            f"{o.lag_s * 1000:.0f} ms after the last change answered",
            "",
            "",
        ),
        (
            "  API change rate",
            f"{live.rate:,.0f} renames/s with {live.writers} clients; p50 "
            f"{pct(live.api_ms, 50):.1f}  p99 {pct(live.api_ms, 99):.1f} ms"
            + (f"; {live.errors} errors" if live.errors else "")
            + f"; server CPU {o.server_cpu_s / o.wall_s * 100:.0f}% over {o.wall_s:.1f} s",
            "",
            "",
        ),
    ]
    if o.drain is not None:
        drained = (
            f"{o.drain_rate:,.0f} deliveries/s draining {o.drain_backlog:,} queued "
            f"in {o.drain_s:.2f} s; server CPU {o.drain_cpu_s / o.drain_s * 100:.0f}%"
            + ("; renames still coming in during the drain" if o.drain_overlap else "")
        )
        rows.append(
            ("  outbox alone (backlog)", drained if o.drain_s > 0 else "no backlog drained", "", "")
        )
    wanted = live.accepted + (o.drain.accepted if o.drain is not None else 0)
    got = o.received + o.drain_received
    rows.append(
        (
            "  delivered",
            f"{got:,}/{wanted:,} unique ids, {o.duplicates} repeats, "
            f"{o.bad_signatures} bad signatures",
            "all, signed",
            mark(got == wanted and not o.bad_signatures),
        )
    )
    return rows


def print_settings(report: Report, args: argparse.Namespace) -> None:
    print("\n== settings ==")
    print(
        f"  cores: {report.cores}  python {platform.python_version()}  {platform.machine()}  "
        f"load average (1 min) at start {report.load[0]:.2f}, at end {os.getloadavg()[0]:.2f}"
    )
    for line in report.settings:
        print(f"  {line}")
    print(
        "  registry: 1 uvicorn process (uvloop, httptools), SQLite, embedded IdP, local storage; "
        "bench client: one asyncio process (uvloop) on the same machine: httpx2 for the API and "
        "the PUT->SSE stream, raw sockets for the healthz load and the idle SSE subscribers, "
        "the webhook receiver (tests/receivers.py) in a thread"
    )
    print(
        f"  writes {args.writes} (+{args.warmup} warm-up)  fan-out {args.fanout}  "
        f"changes {args.changes} by {args.writers} writers  healthz {args.health_s:g} s "
        f"x {CONCURRENCY} connections"
    )
    print(
        f"  SSE opened {OPEN_BATCH} at a time (uvicorn backlog 2048), server SSE keep-alive "
        f"15 s (default); RSS read after {IDLE_BEFORE_RSS_S:g} s idle; outbox backlog built "
        f"for up to {DRAIN_BUILD_S:g}+{HOLD_MAX_S:g} s with the first delivery held"
    )


def print_report(report: Report, args: argparse.Namespace) -> None:
    print_settings(report, args)
    print("\n== figures ==")
    rows: list[Row] = []
    if report.health is not None:
        rows += _health_rows(report.health)
    if report.put is not None:
        rows += _put_rows(report.put)
    for f in report.fanouts:
        rows += _fanout_rows(f)
    if report.memory is not None:
        rows += _memory_rows(report.memory)
    if report.floor is not None:
        rows += _floor_rows(report.floor)
    if report.outbox is not None:
        rows += _outbox_rows(report.outbox)
    width = max(len(r[0]) for r in rows) if rows else 0
    for label, figure, target, ok in rows:
        suffix = f"   [{target}] {ok}" if target else ""
        print(f"  {label:<{width}}  {figure}{suffix}")

    print("\n== targets ==")
    for label, _, target, ok in rows:
        if target:
            print(f"  {ok}  {label.strip()}: {target}")
    marginal = report.memory.marginal_kb if report.memory is not None else None
    if marginal is not None and marginal >= TARGET_KB_PER_CONNECTION:
        print(
            f"  note: one more idle SSE connection costs {marginal:.1f} KB at this size, at or "
            f"over the {TARGET_KB_PER_CONNECTION:.0f} KB target: the memory figure is borderline"
        )
