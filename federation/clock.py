"""The clock is injected so that TTL and backoff tests are deterministic."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol

__all__ = ["SYSTEM_WALL_CLOCK", "Clock", "ManualClock", "MonotonicClock", "WallClock"]


class Clock(Protocol):
    def now(self) -> float:
        """Seconds on a monotonic scale."""
        ...


class MonotonicClock:
    def now(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock for tests: time moves only when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds


class WallClock(Protocol):
    """Calendar time, for what peers compare with theirs (signature `created`, `Date`)."""

    def now(self) -> datetime:
        """Timezone-aware (UTC)."""
        ...


class _SystemWallClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


SYSTEM_WALL_CLOCK: WallClock = _SystemWallClock()
