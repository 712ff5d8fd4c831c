"""Gauges read at scrape time, from the database (shared by every replica, so each reports the
truth without bookkeeping) and from this replica's own state (tailer position, providers).

The queries read several wings' tables; they live here, at the top layer, because only the
metrics need these aggregates."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from registry.changes import log as changes
from registry.core.models import Destination, LoginFailure, OutboxEntry, Peer, Space, table

outbox = table(OutboxEntry)
destinations = table(Destination)
peers = table(Peer)
login_failures = table(LoginFailure)
spaces = table(Space)


@dataclass(frozen=True)
class ReplicaState:
    """What only this replica knows."""

    tailer_position: int  # its slowest worker's (`Metrics.scrape`)
    provider_problems: Mapping[str, str | None]


def _gauge(name: str, doc: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=list(labels))


async def read_gauges(conn: AsyncConnection, replica: ReplicaState, now: datetime) -> list[Metric]:
    return [
        *_replica_gauges(replica, await changes.latest(conn)),
        *await _outbox_gauges(conn, now),
        *await _destination_gauges(conn),
        await _peer_gauge(conn),
        await _unavailable_spaces_gauge(conn),
        await _login_failure_gauge(conn),
    ]


def _replica_gauges(replica: ReplicaState, newest: int) -> list[Metric]:
    lag = _gauge(
        "spacereg_change_log_lag",
        "Changes in the log that this replica (its slowest worker) has not yet pushed to its"
        " streams.",
    )
    lag.add_metric([], max(0, newest - replica.tailer_position))
    up = _gauge("spacereg_provider_up", "1 when a storage provider answers a probe.", ["provider"])
    for name, problem in replica.provider_problems.items():
        up.add_metric([name], 0 if problem else 1)
    return [lag, up]


async def _outbox_gauges(conn: AsyncConnection, now: datetime) -> list[Metric]:
    labels = ["kind", "destination"]
    depth = _gauge("spacereg_outbox_depth", "Deliveries waiting to be sent.", labels)
    age = _gauge(
        "spacereg_outbox_oldest_age_seconds", "Age of the oldest delivery waiting.", labels
    )
    rows = await conn.execute(
        select(outbox.c.kind, outbox.c.origin, func.count(), func.min(outbox.c.created_at))
        .where(outbox.c.state == "pending")
        .group_by(outbox.c.kind, outbox.c.origin)
    )
    for kind, origin, count, oldest in rows:
        depth.add_metric([kind, origin], count)
        age.add_metric([kind, origin], max(0.0, (now - oldest).total_seconds()))
    failed = _gauge(
        "spacereg_outbox_failed", "Deliveries given up (until retention prunes them).", ["kind"]
    )
    given_up = await conn.execute(
        select(outbox.c.kind, func.count())
        .where(outbox.c.state == "failed")
        .group_by(outbox.c.kind)
    )
    for kind, count in given_up:
        failed.add_metric([kind], count)
    return [depth, age, failed]


async def _destination_gauges(conn: AsyncConnection) -> list[Metric]:
    failures = _gauge(
        "spacereg_delivery_failures_in_a_row",
        "Failed delivery attempts in a row to a receiving server.",
        ["destination"],
    )
    circuit = _gauge(
        "spacereg_circuit_open", "1 while deliveries to a server wait for a probe.", ["destination"]
    )
    rows = await conn.execute(
        select(destinations.c.origin, destinations.c.failures, destinations.c.opened_at)
    )
    for origin, count, opened_at in rows:
        failures.add_metric([origin], count)
        circuit.add_metric([origin], 0 if opened_at is None else 1)
    return [failures, circuit]


async def _peer_gauge(conn: AsyncConnection) -> Metric:
    gauge = _gauge(
        "spacereg_peer_state",
        "1 for each peer's state (ours) and the state it told us (partner_state).",
        ["peer", "state", "partner_state"],
    )
    for domain, status, partner in await conn.execute(
        select(peers.c.domain, peers.c.status, peers.c.partner_state)
    ):
        gauge.add_metric([domain, status, partner], 1)
    return gauge


async def _unavailable_spaces_gauge(conn: AsyncConnection) -> Metric:
    gauge = _gauge(
        "spacereg_spaces_unavailable",
        "Spaces whose provider (or peer, for mountpoints) was last found unreachable.",
        ["provider"],
    )
    rows = await conn.execute(
        select(spaces.c.provider, func.count())
        .where(spaces.c.availability != "available")
        .group_by(spaces.c.provider)
    )
    for provider, count in rows:
        gauge.add_metric([provider], count)
    return gauge


async def _login_failure_gauge(conn: AsyncConnection) -> Metric:
    gauge = _gauge(
        "spacereg_idp_login_failures",
        "Failed sign-ins at the embedded IdP in the current streaks, counted per username"
        " (by) or per client address.",
        ["by"],
    )
    kind = func.substr(login_failures.c.key, 1, 4)  # `user` or `addr`
    rows = await conn.execute(
        select(kind, func.coalesce(func.sum(login_failures.c.failures), 0)).group_by(kind)
    )
    totals = {"user": 0, "addr": 0}
    totals.update({prefix: int(total) for prefix, total in rows})
    gauge.add_metric(["username"], totals["user"])
    gauge.add_metric(["address"], totals["addr"])
    return gauge
