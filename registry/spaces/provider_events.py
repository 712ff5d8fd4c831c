"""What storage providers report, copied into the registry and logged as changes: a space's
new root ETag and usage, or a provider going away and coming back.

Every path a provider reports is named in some `content` change (reports queued for one space
are merged, never dropped), and only once per ETag: a report of the ETag we already hold logs
just the paths not yet logged at it, so a repeated delivery, a watcher repeating a write's own
report, or a full reconciliation after a restart (which names no paths) logs nothing twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from registry.changes import log as changes
from registry.core.clock import Clock
from registry.spaces import availability
from registry.spaces import provider_store as provider_reports
from registry.spaces.provider_store import HeldSpace, Recorded
from registry.spaces.service import SpaceService
from registry.spaces.store import update_space
from storage import (
    Availability,
    Change,
    HttpChangeSource,
    ProviderEvent,
    SpaceInfo,
    SpaceStore,
    StorageError,
    change_path,
)

logger = logging.getLogger("spacereg.providers")

PATHS_PER_CHANGE_MAX = 100
# Reconciliation reads this many spaces a page, and asks their providers of this many at once.
RECONCILE_PAGE = 500
RECONCILE_AT_ONCE = 8


class ProviderEvents:
    """Providers hand events to `submit`, which only queues them (a provider may report from
    inside a registry transaction); `run`, a supervised worker, applies them. Changes to one
    space that queue up are merged into one. An event leaves its queue only once applied, so
    a worker that crashes and is restarted applies it again."""

    def __init__(self, engine: AsyncEngine, space_service: SpaceService, clock: Clock) -> None:
        self._engine = engine
        self._spaces = space_service
        self._clock = clock
        self._changes: dict[tuple[str, str], Change] = {}
        self._availability: list[tuple[str, Availability]] = []
        self._woken = asyncio.Event()
        self._applied = asyncio.Condition()  # notified by `run` as it applies each change

    async def submit(self, provider: str, event: ProviderEvent) -> None:
        if isinstance(event, Change):
            key = (provider, event.space_id)
            prior = self._changes.pop(key, None)
            paths = (*prior.paths, *event.paths) if prior is not None else event.paths
            self._changes[key] = replace(
                event, paths=tuple(dict.fromkeys(change_path(p) for p in paths))
            )
        else:
            self._availability.append((provider, event))
        self._woken.set()

    async def run(self) -> None:
        while True:
            if not (self._changes or self._availability):  # left over by a crashed run: go on
                await self._woken.wait()
            self._woken.clear()
            while self._availability:
                await self._availability_changed(*self._availability[0])
                del self._availability[0]
            while self._changes:
                key, change = next(iter(self._changes.items()))
                await self._content_changed(key[0], change)
                if self._changes.get(key) is change:  # not replaced by a newer report meanwhile
                    del self._changes[key]
                async with self._applied:
                    self._applied.notify_all()

    async def reconcile(self, providers: Mapping[str, SpaceStore]) -> None:
        """Compare every space with its provider once, for what changed while we were down: a
        page at a time, asking the provider of `RECONCILE_AT_ONCE` spaces at once, and
        submitting only the spaces whose ETag or usage differs from ours (the rest would be
        read again to find nothing), and no more than a page ahead of `run` applying them; it
        returns once they are applied (`run` must be running: both are supervised jobs).
        Providers told of changes over HTTP are left out: they report every space themselves
        after each subscription."""
        compared = {
            name: provider
            for name, provider in providers.items()
            if not isinstance(provider, HttpChangeSource)
        }
        asking = asyncio.Semaphore(RECONCILE_AT_ONCE)

        async def current(held: HeldSpace) -> SpaceInfo | None:
            async with asking:
                try:
                    return await compared[held.provider].get_space(held.space_id)
                except StorageError as exc:
                    logger.warning(
                        "cannot reconcile space %s on %s: %s", held.space_id, held.provider, exc
                    )
                    return None

        after, queued = "", set[tuple[str, str]]()
        while True:
            async with self._engine.connect() as conn:
                page = await provider_reports.held_spaces(conn, compared, after, RECONCILE_PAGE)
            if not page:
                await self._until(lambda: queued.isdisjoint(self._changes))
                return
            after = page[-1].space_id
            found = await asyncio.gather(*(current(held) for held in page))
            changed = [
                (held.provider, Change(held.space_id, info.etag, info.used, ()))
                for held, info in zip(page, found, strict=True)
                if info is not None and (info.etag, info.used) != (held.etag, held.used)
            ]
            for provider, change in changed:
                await self.submit(provider, change)
                queued.add((provider, change.space_id))
            await self._until(lambda: len(self._changes) <= RECONCILE_PAGE)
            queued.intersection_update(self._changes)  # no larger than the queue

    async def _until(self, done: Callable[[], bool]) -> None:
        """Wait until `done()` holds, looking again as `run` applies each change."""
        async with self._applied:
            await self._applied.wait_for(done)

    async def _content_changed(self, provider: str, change: Change) -> None:
        async with self._spaces.transaction() as conn:
            now = self._clock.now()
            recorded = await provider_reports.record_content(
                conn, provider, change.space_id, change.etag, change.used, now
            )
            if recorded is Recorded.UNKNOWN:
                return
            if recorded is Recorded.CHANGED:
                paths = list(change.paths) or ["/"]  # changed, nobody said where: anywhere
            else:
                paths = await provider_reports.unlogged_paths(
                    conn, change.space_id, change.etag, change.paths
                )
                if not paths:
                    return
            data: dict[str, object] = {
                "etag": change.etag,
                "used": change.used,
                "paths": paths[:PATHS_PER_CHANGE_MAX],
            }
            if len(paths) > PATHS_PER_CHANGE_MAX:
                data["pathsTruncated"] = True
            await changes.append(conn, change.space_id, "content", data, now)
            await _share_spaces_changed(conn, change, paths, now)

    async def _availability_changed(self, provider: str, event: Availability) -> None:
        async with self._spaces.transaction() as conn:
            which = provider_reports.spaces.c.provider == provider
            now = self._clock.now()
            affected = await availability.mark(conn, which, event.available, event.reason, now)
        if affected:
            state = availability.state_of(event.available)
            logger.warning(
                "provider %s is %s (%s): %d spaces", provider, state, event.reason, len(affected)
            )


async def _share_spaces_changed(
    conn: AsyncConnection, change: Change, paths: list[str], now: datetime
) -> None:
    """A change inside a shared folder is a change of its share space too: a new root ETag
    (derived from the holding space's) and the paths below the folder."""
    for space_id, folder, used in await provider_reports.share_spaces_of(conn, change.space_id):
        below = provider_reports.paths_below(folder, paths)
        if not below:
            continue
        etag = '"' + hashlib.sha256(f"{change.etag}:{space_id}".encode()).hexdigest()[:32] + '"'
        await update_space(conn, space_id, {"etag": etag}, now)
        data = {"etag": etag, "used": used, "paths": below[:PATHS_PER_CHANGE_MAX]}
        await changes.append(conn, space_id, "content", data, now)
