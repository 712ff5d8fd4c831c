"""The delivery worker: sends what the outbox holds, one queue per destination, each delivery
by the sender of its kind (`senders.py`).

Each replica claims due rows with a lease (row locks with SKIP LOCKED on PostgreSQL), so an
entry is sent by one replica; a replica that dies mid-send loses its lease and the entry is
sent again, which receivers drop by message id. Each destination's queue is its own task: a
destination that hangs or fails holds up its own queue only, never another's, even one
claimed in the same batch; a destination in flight is not claimed again until its task ends.

Failures back a destination off, persisted (Synapse's shape: the first retry within seconds,
doubling to hours, with jitter), or as long as a peer's `Retry-After` asks if longer (up to
`RETRY_AFTER_MAX_S`). After `CIRCUIT_OPENS_AFTER` failures in a row its circuit
opens: nothing is sent to it until its retry time, then one delivery alone goes as a probe,
and only the probe's success closes the circuit. An entry is given up once it is older than
`max_age`, with the reason recorded on it. Rows of a kind this replica has no sender for are
not claimed: they wait for one that has.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import timedelta
from functools import partial

from sqlalchemy.ext.asyncio import AsyncEngine

from common.backoff import backoff_s
from common.waiting import cancel_all, set_within
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
STOP_SENDING_S = 5.0  # how long a cancelled worker waits for the sends it cancelled
# A destination that failed waits 2 s, doubling to 4 hours, stretched by up to 20% so that
# destinations that failed together do not retry together.
BACKOFF_FIRST_S = 2.0
BACKOFF_MAX_S = 4 * 3600.0
BACKOFF_JITTER = 0.2
# Failures in a row that open a destination's circuit (one probe at a time from then on).
CIRCUIT_OPENS_AFTER = 3
# A peer's Retry-After (on 429 and 503) is waited for, up to our own longest backoff.
RETRY_AFTER_MAX_S = BACKOFF_MAX_S


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
        self._busy: dict[str, asyncio.Task[None]] = {}  # destinations being sent to, by origin

    def wake(self) -> None:
        self._woken.set()

    async def run(self) -> None:
        try:
            while True:
                while await self._start_due():
                    pass
                await set_within(self._woken, self._poll_seconds)
                self._woken.clear()
        finally:
            # Let them end their transactions before the engine is disposed of.
            await cancel_all(list(self._busy.values()), STOP_SENDING_S)

    async def send_due(self) -> int:
        """Claim one batch and send it to the end; returns how many were claimed."""
        started = await self._start_due()
        await asyncio.gather(*(task for task, _count in started))
        return sum(count for _task, count in started)

    async def _start_due(self) -> list[tuple[asyncio.Task[None], int]]:
        """Claim one batch and start each destination's queue as its own task."""
        async with self._engine.begin() as conn:
            claimed = await outbox.claim(
                conn,
                self._clock.now(),
                CLAIM_LEASE,
                CLAIM_BATCH,
                self._senders.keys(),
                busy=tuple(self._busy),
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
        started = []
        for origin, queue in by_origin.items():
            task = asyncio.create_task(self._send_queue(origin, queue, sends))
            self._busy[origin] = task
            task.add_done_callback(partial(self._done, origin))
            started.append((task, len(queue)))
        return started

    def _done(self, origin: str, task: asyncio.Task[None]) -> None:
        """A destination's queue ended: look again (it may hold more, or others wait). Its
        rows, if it crashed, are sent again once their claim runs out."""
        self._busy.pop(origin, None)
        if not task.cancelled() and task.exception() is not None:
            logger.error("sending to %s crashed", origin, exc_info=task.exception())
        self.wake()

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
                await self._failed(origin, queue[len(sent) :], failure)

    async def _failed(self, origin: str, rest: list[Delivery], failure: DeliveryFailed) -> None:
        now, error = self._clock.now(), str(failure)
        too_old = [d for d in rest if now - d.created_at > self._max_age]
        retry = [d.id for d in rest if now - d.created_at <= self._max_age]
        asked = timedelta(seconds=min(failure.retry_after_s or 0.0, RETRY_AFTER_MAX_S))
        async with self._engine.begin() as conn:
            retry_at = await outbox.failed(
                conn,
                retry,
                origin,
                error,
                now,
                lambda n: max(backoff(n), asked),
                CIRCUIT_OPENS_AFTER,
            )
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
