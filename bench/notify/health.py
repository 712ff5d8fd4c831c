"""5. The yardstick: `/healthz` requests/s, the most the registry answers with nothing to do.

It uses the benchmarks' raw keep-alive load generator (bench/common/load.py), not httpx2: this
figure is about the server, and httpx2 in one client process tops out an order of magnitude
below it."""

from __future__ import annotations

from bench.common.load import Load, get_request, load

CONCURRENCY = 32


async def healthz(port: int, seconds: float, concurrency: int = CONCURRENCY) -> Load:
    return await load(port, get_request("/healthz", port), concurrency, seconds)
