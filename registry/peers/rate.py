"""Per-peer rate limits on incoming server-to-server requests: a token bucket per peer.

The buckets are per replica, in memory: a check costs no database round trip on every signed
request, and a partner's traffic spread over N replicas by the load balancer may reach N times
the rate, which the operator sizes for. They count only requests whose signature verified, so
no one can spend a partner's allowance by forging requests in its name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from registry.core.clock import Clock
from registry.peers.errors import PeerRateLimited

__all__ = ["PeerRateLimits"]


@dataclass
class _Bucket:
    tokens: float
    at: float  # seconds (the clock's timestamp) when `tokens` was counted


class PeerRateLimits:
    def __init__(self, per_second: float, burst: int, clock: Clock) -> None:
        self._per_second = per_second
        self._burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}  # one per peer that sent a verified request

    def take(self, peer: str) -> None:
        """Count one request of `peer`; 429 `peer_rate_limited` with `Retry-After` beyond."""
        now = self._clock.now().timestamp()
        bucket = self._buckets.setdefault(peer, _Bucket(self._burst, now))
        elapsed = max(now - bucket.at, 0.0)
        bucket.tokens = min(self._burst, bucket.tokens + elapsed * self._per_second)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return
        wait_s = math.ceil((1.0 - bucket.tokens) / self._per_second)
        raise PeerRateLimited(
            f"{peer} sends more than {self._per_second:g} requests/s here; retry in {wait_s} s",
            wait_s,
        )
