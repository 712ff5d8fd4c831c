"""The metrics this process keeps itself (request latency, its SSE streams, its tailer's
position); gauges that live in the database are read at scrape time by
`registry.runtime.gauges`, so every replica reports the truth."""

from __future__ import annotations

import asyncio
import math
import os

from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client.core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import Scope

from registry.changes.hub import Hub
from registry.core.routing import METHOD_ORDER

_METHODS = frozenset(METHOD_ORDER)
# Seconds until the response starts: a Server-Sent-Events stream counts until it opens.
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Set by `serve --workers` for its workers: prometheus_client keeps every process's values in
# files there (its multiprocess mode), so that a scrape answered by one worker counts them all.
MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# How often a process says its streams and its tailer's position, for a scrape another worker
# answers.
PUBLISH_S = 1.0
TAILER_POSITION = "spacereg_change_tailer_position"


class Metrics:
    """One registry of instruments per app (tests run several apps in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._latency = Histogram(
            "spacereg_http_request_duration_seconds",
            "Time until the response started, per route template (not per raw path).",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        # Under `serve --workers` the streams of the node's live workers, summed.
        self._sse = Gauge(
            "spacereg_sse_connections",
            "Server-Sent-Events streams open on this replica (every worker of its node).",
            multiprocess_mode="livesum",
            registry=self.registry,
        )
        # Under `serve --workers` the slowest live worker's, which the lag is measured from.
        self._position = Gauge(
            TAILER_POSITION,
            "The change-log position up to which this replica pushed changes to its streams"
            " (its slowest worker's).",
            multiprocess_mode="livemin",
            registry=self.registry,
        )
        # Until this process tells its position it holds none: not 0, which would be the
        # least while a worker starts, and make the lag the whole log's length.
        self._position.set(math.inf)

        # What a scrape reads: this process's instruments, or (the variable is set before the
        # workers start) every worker's of this node, summed from their files.
        self._collected = self.registry
        shared = os.environ.get(MULTIPROCESS_DIR_VARIABLE)
        if shared:
            self._collected = CollectorRegistry(auto_describe=False)
            MultiProcessCollector(self._collected, shared)  # type: ignore[no-untyped-call]

    @property
    def shared(self) -> bool:
        """Whether this process is one of a node's workers, whose scrapes read every worker's
        files (so it must `publish` what only it knows)."""
        return self._collected is not self.registry

    def tell(self, hub: Hub) -> None:
        """This process's open streams and tailer position now (at each scrape, and from
        `publish` under `serve --workers`)."""
        self._sse.set(len(hub))
        self._position.set(hub.position)

    async def publish(self, hub: Hub) -> None:
        """Say this process's streams and position every `PUBLISH_S`, for the scrapes the
        node's other workers answer (a job: runs until cancelled)."""
        while True:
            self.tell(hub)
            await asyncio.sleep(PUBLISH_S)

    def observe(self, scope: Scope, status: int, seconds: float) -> None:
        """Called by `RequestContext` as each response starts. Labels stay bounded: the route's
        template, a known method or `other`, the status."""
        method = scope["method"] if scope["method"] in _METHODS else "other"
        route = getattr(scope.get("route"), "path", None) or "unmatched"
        self._latency.labels(method, route, str(status)).observe(seconds)

    def scrape(self, hub: Hub) -> tuple[list[Metric], int]:
        """The instruments' values, this process's or every worker's of the node (told this
        process's streams and position first), and the tailer position the change-log lag is
        measured from: the least a live worker said (at most `PUBLISH_S` ago)."""
        self.tell(hub)
        collected = list(self._collected.collect())
        said = [
            sample.value
            for metric in collected
            if metric.name == TAILER_POSITION
            for sample in metric.samples
        ]
        return collected, int(min(said, default=hub.position))
