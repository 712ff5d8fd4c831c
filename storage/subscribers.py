"""A provider service's subscribers (WebSub-like) and the sender that delivers changes to them.

A subscriber is a callback URL with its own secret and a lease. Subscribing verifies intent: the
callback must echo a random challenge. Subscribers are kept in a small JSON file so that a restart
keeps them. Deliveries are signed the Standard Webhooks way with the subscriber's secret. Each
subscriber has one sender that delivers in order and retries with backoff; while it waits, newer
changes of the same space replace older ones (a change carries the whole state of the space), so
its queue is bounded by the number of spaces. A subscriber that misses changes anyway (queue
overflow, a restart) catches up when it renews and reconciles.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx2
import orjson
import stamina

from common import challenge, webhook_signature
from storage.provider import Change
from storage.signatures import MIN_SECRET_LENGTH

logger = logging.getLogger("spacereg.provider.subscribers")

RETRY_MIN_SECONDS = 1.0
RETRY_MAX_SECONDS = 300.0
MAX_PENDING_SPACES = 10_000  # per subscriber
MAX_SECRET_LENGTH = 200
MAX_CALLBACK_LENGTH = 2048
MAX_PATHS_PER_DELIVERY = 1000  # more are cut (the body says so): receivers cap request bodies
UNDELIVERABLE = frozenset({400, 413, 422})  # a retry would be refused again: drop it


class SubscriptionRefused(Exception):
    """The subscription request is invalid or the callback did not confirm it."""


@dataclass(frozen=True)
class Subscriber:
    callback: str
    secret: str
    expires: float  # unix time


class SubscriberStore:
    """Live subscribers by callback URL, saved atomically to `path`, readable by the owner only
    (it holds their secrets)."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock
        self._subscribers: dict[str, Subscriber] = {}
        self._lock = asyncio.Lock()

    def load(self) -> None:
        try:
            items = orjson.loads(self.path.read_bytes())
            subscribers = [
                Subscriber(i["callback"], i["secret"], float(i["expires"])) for i in items
            ]
        except FileNotFoundError:
            subscribers = []
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            # Written atomically, so only a hand edit gets here; subscribers renew within a lease.
            logger.error("ignoring unreadable %s: %r", self.path, exc)
            subscribers = []
        now = self.clock()
        self._subscribers = {s.callback: s for s in subscribers if s.expires > now}

    def get(self, callback: str) -> Subscriber | None:
        subscriber = self._subscribers.get(callback)
        return subscriber if subscriber and subscriber.expires > self.clock() else None

    def live(self) -> list[Subscriber]:
        now = self.clock()
        return [s for s in self._subscribers.values() if s.expires > now]

    async def put(self, subscriber: Subscriber) -> None:
        self._subscribers[subscriber.callback] = subscriber
        await self._save()

    async def remove(self, callback: str) -> bool:
        found = self._subscribers.pop(callback, None) is not None
        if found:
            await self._save()
        return found

    async def drop_expired(self) -> list[str]:
        now = self.clock()
        expired = [c for c, s in self._subscribers.items() if s.expires <= now]
        for callback in expired:
            del self._subscribers[callback]
        if expired:
            await self._save()
        return expired

    async def _save(self) -> None:
        async with self._lock:  # each write holds the state as it is when the write starts
            data = orjson.dumps([s.__dict__ for s in self._subscribers.values()])
            await asyncio.to_thread(_write_atomically, self.path, data)


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Subscriptions:
    """Subscribe, unsubscribe, and publish changes to every live subscriber."""

    def __init__(
        self,
        topic: str,
        store: SubscriberStore,
        http: httpx2.AsyncClient,
        lease_range: tuple[int, int] = (60, 86400),
    ) -> None:
        self.topic = topic
        self.store = store
        self.http = http
        self.lease_range = lease_range
        self.retry_seconds = (RETRY_MIN_SECONDS, RETRY_MAX_SECONDS)  # the first pause, the longest
        self._senders: dict[str, _Sender] = {}

    async def subscribe(self, callback: str, secret: str, lease_seconds: int) -> Subscriber:
        _check_callback(callback)
        if not MIN_SECRET_LENGTH <= len(secret) <= MAX_SECRET_LENGTH:
            raise SubscriptionRefused(
                f"secret must have {MIN_SECRET_LENGTH} to {MAX_SECRET_LENGTH} characters"
            )
        lease = max(self.lease_range[0], min(self.lease_range[1], lease_seconds))
        await self._verify_intent(callback, lease)
        subscriber = Subscriber(callback, secret, self.store.clock() + lease)
        await self.store.put(subscriber)
        logger.info("subscriber %s for %d s", callback, lease)
        return subscriber

    async def unsubscribe(self, callback: str) -> bool:
        sender = self._senders.pop(callback, None)
        if sender is not None:
            await sender.stop()
        return await self.store.remove(callback)

    async def publish(self, change: Change) -> None:
        for callback in await self.store.drop_expired():
            if (sender := self._senders.pop(callback, None)) is not None:
                await sender.stop()
        for subscriber in self.store.live():
            sender = self._senders.get(subscriber.callback)
            if sender is None or sender.stopped:
                sender = self._senders[subscriber.callback] = _Sender(subscriber.callback, self)
            sender.offer(change)

    async def close(self) -> None:
        senders, self._senders = list(self._senders.values()), {}
        for sender in senders:
            await sender.stop()

    async def _verify_intent(self, callback: str, lease: int) -> None:
        try:
            await challenge.confirm(self._get, callback, self.topic, lease)
        except challenge.CallbackRefused as exc:
            raise SubscriptionRefused(str(exc)) from exc

    async def _get(self, url: str) -> challenge.Answer:
        try:
            response = await self.http.get(url)
        except httpx2.HTTPError as exc:
            raise challenge.CallbackRefused(f"callback unreachable: {exc!r}") from exc
        return challenge.Answer(
            response.status_code, response.content, response.headers.get("location")
        )


def _check_callback(callback: str) -> None:
    parts = urlsplit(callback)
    if (
        parts.scheme not in {"http", "https"}
        or not parts.netloc
        or parts.fragment
        or len(callback) > MAX_CALLBACK_LENGTH
    ):
        raise SubscriptionRefused("callback must be an absolute http(s) URL without fragment")


@dataclass(frozen=True)
class Delivery:
    event_id: str
    body: bytes


def delivery_for(change: Change, now: float) -> Delivery:
    event_id = str(uuid.uuid4())
    body = {
        "id": event_id,
        "type": "space.changed",
        "spaceId": change.space_id,
        "etag": change.etag,
        "used": change.used,
        "paths": list(change.paths[:MAX_PATHS_PER_DELIVERY]),
        "time": datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z"),
    }
    if len(change.paths) > MAX_PATHS_PER_DELIVERY:
        body["pathsTruncated"] = True
    return Delivery(event_id, orjson.dumps(body))


class _Sender:
    """Delivers one subscriber's changes in order; retries each until it succeeds."""

    def __init__(self, callback: str, hub: Subscriptions) -> None:
        self.callback = callback
        self.hub = hub
        self.pending: OrderedDict[str, Change] = OrderedDict()
        self.wake = asyncio.Event()
        self.stopped = False
        self.task = asyncio.create_task(self._run(), name=f"deliver to {callback}")

    def offer(self, change: Change) -> None:
        queued = self.pending.get(change.space_id)
        if queued is not None:
            paths = tuple(dict.fromkeys([*queued.paths, *change.paths]))
            self.pending[change.space_id] = replace(change, paths=paths)
        elif len(self.pending) >= MAX_PENDING_SPACES:
            logger.warning("queue of %s is full; dropped a change", self.callback)
        else:
            self.pending[change.space_id] = change
        self.wake.set()

    async def stop(self) -> None:
        self.stopped = True
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)

    async def _run(self) -> None:
        try:
            while True:
                while not self.pending:
                    self.wake.clear()
                    await self.wake.wait()
                _, change = self.pending.popitem(last=False)
                if not await self._deliver(delivery_for(change, self.hub.store.clock())):
                    return
        finally:
            self.stopped = True

    async def _deliver(self, delivery: Delivery) -> bool:
        """Deliver until it succeeds; False when the subscriber is gone."""
        least, most = self.hub.retry_seconds
        async for attempt in stamina.retry_context(
            on=_Failed,
            attempts=None,
            timeout=None,
            wait_initial=least,
            wait_max=most,
            wait_jitter=0,
        ):
            with attempt:
                try:
                    return await self._attempt(delivery)
                except _Failed as exc:
                    logger.warning(
                        "delivery %s to %s failed (%s); retry in %.1f s",
                        delivery.event_id,
                        self.callback,
                        exc,
                        attempt.next_wait,
                    )
                    raise
        raise AssertionError("unreachable: the retries have no limit")

    async def _attempt(self, delivery: Delivery) -> bool:
        """One try: True when done with it, False when the subscriber is gone; _Failed when
        it should be tried again."""
        subscriber = self.hub.store.get(self.callback)
        if subscriber is None:
            return False
        headers = {
            "Content-Type": "application/json",
            **webhook_signature.signed_headers(
                subscriber.secret,
                delivery.event_id,
                delivery.body,
                datetime.fromtimestamp(self.hub.store.clock(), UTC),
            ),
        }
        try:
            response = await self.hub.http.post(
                self.callback, content=delivery.body, headers=headers
            )
        except httpx2.HTTPError as exc:
            raise _Failed(repr(exc)) from exc
        if response.is_success:
            return True
        if response.status_code in UNDELIVERABLE:
            logger.error(
                "%s refused delivery %s with %d; dropped (it catches up when it renews)",
                self.callback,
                delivery.event_id,
                response.status_code,
            )
            return True
        if response.status_code == 410:  # WebSub: the subscriber is gone for good
            await self.hub.store.remove(self.callback)
            return False
        raise _Failed(f"status {response.status_code}")


class _Failed(Exception):
    """A delivery attempt failed in a way that a later one may not."""
