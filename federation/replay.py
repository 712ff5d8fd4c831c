"""Remembering accepted signatures until they expire, so that none is accepted twice.

The registry implements `ReplayCache` in its database (an insert that fails on a duplicate key),
so that every replica shares it; `MemoryReplayCache` serves tests and single-process use.
"""

from __future__ import annotations

import heapq
from datetime import datetime
from typing import Protocol

from federation.clock import SYSTEM_WALL_CLOCK, WallClock

__all__ = ["MemoryReplayCache", "ReplayCache"]


class ReplayCache(Protocol):
    async def first_use(self, signature_id: str, until: datetime) -> bool:
        """Record `signature_id` as used until `until`; False if it was already recorded.

        Must be atomic: of two concurrent calls with one id, exactly one gets True. An entry
        may be forgotten after `until` (the time window refuses the signature by then).
        """
        ...


class MemoryReplayCache:
    def __init__(self, clock: WallClock = SYSTEM_WALL_CLOCK) -> None:
        self._clock = clock
        self._until: dict[str, datetime] = {}
        self._expiry: list[tuple[datetime, str]] = []  # a heap, to forget in order

    async def first_use(self, signature_id: str, until: datetime) -> bool:
        self._forget_expired()
        if signature_id in self._until:
            return False
        self._until[signature_id] = until
        heapq.heappush(self._expiry, (until, signature_id))
        return True

    def __len__(self) -> int:
        return len(self._until)

    def _forget_expired(self) -> None:
        now = self._clock.now()
        while self._expiry and self._expiry[0][0] < now:
            _until, signature_id = heapq.heappop(self._expiry)
            self._until.pop(signature_id, None)
