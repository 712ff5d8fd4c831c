"""A TTL cache for discovery answers: single flight, negative entries, stale-while-revalidate.

- A fresh answer is returned as is ("cached").
- An expired answer still inside its stale window is returned at once ("stale") while one
  background refresh runs; if that refresh fails the stale answer keeps being served (the remote
  is down) and the next attempt waits `negative_ttl_s`.
- With nothing usable, one lookup runs per key however many callers wait for it ("fetched");
  its failure is remembered for `negative_ttl_s` and re-raised without touching the network.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar, cast

from common.waiting import cancel_all
from federation.clock import Clock
from federation.errors import DiscoveryError

__all__ = ["CacheSource", "DiscoveryCache", "Loader"]

V = TypeVar("V")
CacheSource = Literal["fetched", "cached", "stale"]
# A loader returns the value and its TTL in seconds (None: "no opinion", use the default).
Loader = Callable[[], Awaitable[tuple[V, float | None]]]


@dataclass
class _Entry(Generic[V]):
    value: V | None
    error: DiscoveryError | None
    fresh_until: float
    stale_until: float
    retry_after: float = 0.0


class DiscoveryCache:
    def __init__(
        self,
        clock: Clock,
        *,
        min_ttl_s: float,
        max_ttl_s: float,
        default_ttl_s: float,
        negative_ttl_s: float,
        max_stale_s: float,
        max_entries: int = 10_000,
    ) -> None:
        self._clock = clock
        self._min_ttl_s, self._max_ttl_s = min_ttl_s, max_ttl_s
        self._default_ttl_s = default_ttl_s
        self._negative_ttl_s = negative_ttl_s
        self._max_stale_s = max_stale_s
        self._max_entries = max_entries
        self._entries: dict[str, _Entry[Any]] = {}
        self._inflight: dict[str, asyncio.Task[Any]] = {}

    def clamp_ttl(self, ttl_s: float | None) -> float:
        ttl = self._default_ttl_s if ttl_s is None else ttl_s
        return min(self._max_ttl_s, max(self._min_ttl_s, ttl))

    async def get(self, key: str, load: Loader[V]) -> tuple[V, CacheSource]:
        now = self._clock.now()
        entry = self._entries.get(key)
        if entry is not None and now < entry.fresh_until:
            if entry.error is not None:
                raise entry.error.with_traceback(None)
            return cast(V, entry.value), "cached"
        if entry is not None and entry.value is not None and now < entry.stale_until:
            if now >= entry.retry_after and key not in self._inflight:
                self._start(key, load)
            return entry.value, "stale"
        task = self._inflight.get(key) or self._start(key, load)
        return await asyncio.shield(task), "fetched"

    def _start(self, key: str, load: Loader[V]) -> asyncio.Task[V]:
        task = asyncio.get_running_loop().create_task(self._load(key, load))
        self._inflight[key] = task
        task.add_done_callback(lambda done: self._finished(key, done))
        return task

    def _finished(self, key: str, task: asyncio.Task[Any]) -> None:
        self._inflight.pop(key, None)
        if not task.cancelled():
            task.exception()  # a failed background refresh is remembered, not reported

    async def _load(self, key: str, load: Loader[V]) -> V:
        try:
            value, ttl_s = await load()
        except DiscoveryError as exc:
            self._remember_failure(key, exc)
            raise
        now = self._clock.now()
        ttl = self.clamp_ttl(ttl_s)
        self._store(key, _Entry(value, None, now + ttl, now + ttl + self._max_stale_s))
        return value

    def _remember_failure(self, key: str, error: DiscoveryError) -> None:
        now = self._clock.now()
        old = self._entries.get(key)
        if old is not None and old.value is not None and now < old.stale_until:
            old.retry_after = now + self._negative_ttl_s  # keep serving stale, back off
            return
        self._store(key, _Entry(None, error, now + self._negative_ttl_s, 0.0))

    def _store(self, key: str, entry: _Entry[Any]) -> None:
        self._entries.pop(key, None)
        self._entries[key] = entry
        while len(self._entries) > self._max_entries:
            self._entries.pop(next(iter(self._entries)))

    async def drain(self) -> None:
        """Wait for in-flight lookups (background refreshes included) to finish."""
        while self._inflight:
            await asyncio.gather(*self._inflight.values(), return_exceptions=True)

    async def aclose(self) -> None:
        await cancel_all(list(self._inflight.values()))
