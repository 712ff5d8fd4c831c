"""The delivery worker: sends what the outbox holds, one destination's queue in order, each
delivery by the sender of its kind (`senders.py`).

Each replica claims due rows with a lease (row locks with SKIP LOCKED on PostgreSQL), so an
entry is sent by one replica; a replica that dies mid-send loses its lease and the entry is
sent again, which receivers drop by event id. Failures back a whole destination off
(exponentially, persisted), and an entry is given up only once it is older than `max_age`.
Rows of a kind this replica has no sender for are not claimed: they wait for one that has.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from common.backoff import backoff_s
from federation.webhooks import DeliveryFailed
from registry.core.clock import SYSTEM_CLOCK, Clock
from registry.outbox import store as outbox
from registry.outbox.senders import Send, Sender
from registry.outbox.store import Delivery

logger = logging.getLogger("spacereg.delivery")

# A claim outlives a crash by this long; then another replica (or the restarted one) resends.
# A batch that takes longer to send may be sent twice, which receivers drop by event id.
CLAIM_LEASE = timedelta(seconds=15)
CLAIM_BATCH = 200
DESTINATIONS_AT_ONCE = 16
POLL_SECONDS = 1.0
# A destination that failed waits 1 s, doubling to an hour, stretched by up to 20% so that
# destinations that failed together do not retry together.
BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 3600.0
BACKOFF_JITTER = 0.2


def backoff(failures: int) -> timedelta:
    """The wait before a destination's next try after `failures` failures in a row."""
    return timedelta(seconds=backoff_s(failures, BACKOFF_FIRST_S, BACKOFF_MAX_S, BACKOFF_JITTER))


class DeliveryWorker:
    def __init__(
        self,
        engine: AsyncEngine,
        senders: Mapping[str, Sender],
        max_age: timedelta,
        *,
        clock: Clock = SYSTEM_CLOCK,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self._engine = engine
        self._senders = dict(senders)
        self._max_age = max_age
        self._clock = clock
        self._poll_seconds = poll_seconds
        self._woken = asyncio.Event()
        self._slots = asyncio.Semaphore(DESTINATIONS_AT_ONCE)

    def wake(self) -> None:
        self._woken.set()

    async def run(self) -> None:
        while True:
            while await self.send_due():
                pass
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), self._poll_seconds)
            self._woken.clear()

    async def send_due(self) -> int:
        """Claim and send one batch; returns how many were claimed."""
        async with self._engine.begin() as conn:
            claimed = await outbox.claim(
                conn, self._clock.now(), CLAIM_LEASE, CLAIM_BATCH, self._senders.keys()
            )
            by_kind: dict[str, list[Delivery]] = {}
            for delivery in claimed:
                by_kind.setdefault(delivery.kind, []).append(delivery)
            sends = {
                kind: await self._senders[kind].prepare(conn, batch)
                for kind, batch in by_kind.items()
            }
        by_origin: dict[str, list[Delivery]] = {}
        for delivery in claimed:
            by_origin.setdefault(delivery.origin, []).append(delivery)
        await asyncio.gather(*(self._send_queue(o, q, sends) for o, q in by_origin.items()))
        return len(claimed)

    async def _send_queue(self, origin: str, queue: list[Delivery], sends: dict[str, Send]) -> None:
        async with self._slots:
            sent: list[int] = []
            failure: DeliveryFailed | None = None
            for delivery in queue:
                try:
                    await sends[delivery.kind](delivery, self._clock.now())
                except DeliveryFailed as exc:
                    failure = exc
                    break
                sent.append(delivery.id)
            if sent:
                async with self._engine.begin() as conn:
                    await outbox.delivered(conn, sent, origin, self._clock.now())
            if failure is not None:
                await self._failed(origin, queue[len(sent) :], str(failure))

    async def _failed(self, origin: str, rest: list[Delivery], error: str) -> None:
        now = self._clock.now()
        too_old = [d for d in rest if now - d.created_at > self._max_age]
        retry = [d.id for d in rest if now - d.created_at <= self._max_age]
        async with self._engine.begin() as conn:
            retry_at = await outbox.failed(conn, retry, origin, error, now, backoff)
            for delivery in too_old:
                reason = (
                    f"gave up after {delivery.attempts + 1} attempts over "
                    f"{now - delivery.created_at}: {error}"
                )
                await outbox.give_up(conn, [delivery.id], reason, now)
        logger.warning(
            "delivery to %s failed (%s); %d queued, next try at %s, %d given up",
            origin,
            error,
            len(retry),
            retry_at.isoformat(),
            len(too_old),
        )
