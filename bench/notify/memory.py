"""3. Memory: the server's RSS (and PSS) before and after opening the largest N idle SSE
connections (see fanout.py, which opens them), divided by N; and, as a trivial baseline, what a
fresh registry holds per idle TCP connection that sent nothing."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bench.common.load import HOST
from bench.notify.health import healthz
from bench.notify.server import Registry, running_registry

IDLE_BEFORE_RSS_S = 3.0


def sample(registry: Registry, connections: int) -> tuple[int, int, int]:
    """(connections, the server's RSS KB, its PSS KB)."""
    return connections, registry.status_kb("VmRSS"), registry.pss_kb()


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


async def idle_floor(n: int, batch: int) -> Floor:
    """Opens `n` TCP connections to a second, fresh registry, `batch` at a time."""
    loop = asyncio.get_running_loop()
    transports: list[asyncio.BaseTransport] = []
    async with running_registry() as registry:
        try:
            await healthz(registry.port, 0.5, 8)
            await asyncio.sleep(IDLE_BEFORE_RSS_S)
            rss0, fds0 = registry.status_kb("VmRSS"), registry.open_fds()
            while len(transports) < n:
                made = await asyncio.gather(
                    *(
                        loop.create_connection(asyncio.Protocol, HOST, registry.port)
                        for _ in range(min(batch, n - len(transports)))
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
