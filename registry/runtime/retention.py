"""Keeps the change log, finished deliveries, lapsed subscriptions (webhooks', and peers' to our
shares), old sign-in failures, the ids of peers' messages, expired WebDAV locks and abandoned
chunked uploads from growing forever: one hourly sweep over the prune functions the wings own."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from registry.auth.idp import throttle
from registry.changes import log as changes
from registry.core.clock import Clock
from registry.outbox import store as outbox
from registry.outbox import subscription_store as subscriptions
from registry.peers import inbox
from registry.shares import subscriptions as share_subscriptions
from registry.spaces.webdav import chunk_store, lock_store
from registry.spaces.webdav.uploads import ABANDONED_AFTER

logger = logging.getLogger("spacereg.retention")

SWEEP_INTERVAL_S = 3600.0
FINISHED_DELIVERIES_KEPT = timedelta(days=1)
LAPSED_SUBSCRIPTIONS_KEPT = timedelta(hours=1)


class Retention:
    def __init__(self, engine: AsyncEngine, changes_kept: timedelta, clock: Clock) -> None:
        self._engine = engine
        self._changes_kept = changes_kept
        self._clock = clock

    async def run(self) -> None:
        while True:
            await self.sweep(self._clock.now())
            await asyncio.sleep(SWEEP_INTERVAL_S)

    async def sweep(self, now: datetime) -> None:
        async with self._engine.begin() as conn:
            dropped = await changes.prune(conn, now - self._changes_kept)
            sent = await outbox.prune(conn, now - FINISHED_DELIVERIES_KEPT)
            lapsed = await subscriptions.remove_expired(conn, now - LAPSED_SUBSCRIPTIONS_KEPT)
            lapsed += await share_subscriptions.prune_lapsed(conn, now - LAPSED_SUBSCRIPTIONS_KEPT)
            await throttle.prune(conn, now)
            messages = await inbox.prune(conn, now)
            await lock_store.prune(conn, now)
            await chunk_store.prune(conn, now - ABANDONED_AFTER)
        if dropped or sent or lapsed or messages:
            logger.info(
                "pruned %d changes, %d finished deliveries, %d lapsed subscriptions, "
                "%d peers' message ids",
                dropped,
                sent,
                lapsed,
                messages,
            )
