"""Per-peer rate limits on a fake clock: a burst, then the average rate; each peer its own."""

from __future__ import annotations

from datetime import timedelta

import pytest

from registry.peers.errors import PeerRateLimited
from registry.peers.rate import PeerRateLimits
from tests.clock import FakeClock


def test_a_peer_gets_its_burst_then_its_rate_and_retry_after_says_when() -> None:
    clock = FakeClock()
    limits = PeerRateLimits(per_second=2.0, burst=3, clock=clock)
    for _request in range(3):
        limits.take("paris.test")

    with pytest.raises(PeerRateLimited) as refused:
        limits.take("paris.test")
    assert (refused.value.status, refused.value.code) == (429, "peer_rate_limited")
    assert refused.value.headers == {"Retry-After": "1"}

    limits.take("lyon.test")  # another peer has its own bucket
    clock.advance(timedelta(seconds=0.5))  # one more request's worth at 2/s
    limits.take("paris.test")
    with pytest.raises(PeerRateLimited):
        limits.take("paris.test")
    clock.advance(timedelta(hours=1))  # refilled, but never beyond the burst
    for _request in range(3):
        limits.take("paris.test")
    with pytest.raises(PeerRateLimited):
        limits.take("paris.test")
