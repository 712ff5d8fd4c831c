"""The bus between replicas over NATS JetStream.

Every message goes into one stream (file storage, bounded by age, count and bytes). Each replica
reads each subscribed subject through an ordered consumer of its own: an ephemeral pull consumer
(no acks, kept in memory on the server) that starts right after the last message this replica
handled. Whenever delivery breaks (heartbeats stop, a consumer sequence is skipped, the consumer
vanishes, the connection drops, the server restarts) the consumer is replaced by a new one that
starts at the next stream sequence, so nothing the stream still holds is lost or repeated.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import uuid
from collections import defaultdict
from datetime import datetime

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext, JetStreamManager, api

from common.waiting import cancel_all
from registry.changes.bus import BusError, Handler, deliver

__all__ = ["NatsBus"]

logger = logging.getLogger("spacereg.bus")

SUBJECT = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")
STREAM_NAME_IN_USE = 10058  # JetStream error code: the stream exists with another configuration
CONSUMER_INACTIVE_S = 120  # the server removes a consumer of a vanished replica after this
DUPLICATE_WINDOW_S = 120
CLOSE_READERS_S = 5.0  # how long `close` waits for the readers it cancelled


class _Broken(Exception):
    """The current consumer can no longer be trusted to deliver the next message."""


class NatsBus:
    def __init__(
        self,
        servers: list[str],
        stream: str = "SPACEREG",
        subject_prefix: str = "spacereg",
        max_age_seconds: float = 3600,
        *,
        max_messages: int = 1_000_000,
        max_bytes: int = 1024 * 1024 * 1024,
        max_message_bytes: int = 1024 * 1024,
        replicas: int = 1,
        connection_name: str = "spacereg",
        connect_timeout_seconds: float = 5,
        start_timeout_seconds: float = 15,
        reconnect_wait_seconds: float = 1,
        request_timeout_seconds: float = 5,
        heartbeat_seconds: float = 2,
        batch: int = 256,
    ) -> None:
        if not SUBJECT.fullmatch(subject_prefix):
            raise ValueError(f"invalid subject prefix {subject_prefix!r}")
        self.servers = servers
        self.stream = stream
        self.subject_prefix = subject_prefix
        self.max_age_seconds = max_age_seconds
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.max_message_bytes = max_message_bytes
        self.replicas = replicas
        self.connection_name = connection_name
        self.connect_timeout_seconds = connect_timeout_seconds
        self.start_timeout_seconds = start_timeout_seconds
        self.reconnect_wait_seconds = reconnect_wait_seconds
        self.request_timeout_seconds = request_timeout_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.batch = batch
        self._handlers: defaultdict[str, list[Handler]] = defaultdict(list)
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._jsm: JetStreamManager | None = None
        self._readers: list[asyncio.Task[None]] = []

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    def subscribe(self, subject: str, handler: Handler) -> None:
        if self._nc is not None:
            raise RuntimeError("NatsBus.subscribe must be called before start()")
        self._handlers[self._absolute(subject)].append(handler)

    async def start(self) -> None:
        if self._nc is not None:
            raise RuntimeError("NatsBus already started")
        nc = Client()
        try:
            await asyncio.wait_for(
                nc.connect(
                    self.servers,
                    name=self.connection_name,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    connect_timeout=self.connect_timeout_seconds,  # type: ignore[arg-type]
                    reconnect_time_wait=self.reconnect_wait_seconds,  # type: ignore[arg-type]
                    error_cb=self._on_error,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_reconnected,
                ),
                self.start_timeout_seconds,
            )
            self._nc = nc
            self._js = nc.jetstream(timeout=self.request_timeout_seconds)
            self._jsm = nc.jsm(timeout=self.request_timeout_seconds)
            await self._ensure_stream()
            info = await self._manager().stream_info(self.stream)
        except (nats.errors.Error, OSError) as exc:  # asyncio.TimeoutError is an OSError
            self._nc = self._js = self._jsm = None
            with contextlib.suppress(Exception):
                await nc.close()
            raise BusError(f"cannot start the NATS bus on {self.servers}: {exc!r}") from exc
        for subject, handlers in self._handlers.items():
            reader = _Reader(self, subject, handlers, info.state.last_seq, info.created)
            self._readers.append(asyncio.create_task(reader.run(), name=f"bus {subject}"))

    async def publish(self, subject: str, payload: bytes) -> None:
        full = self._absolute(subject)
        nc = self._nc
        if nc is None or nc.is_closed:
            raise BusError("the NATS bus is not running")
        if not nc.is_connected:
            raise BusError(f"not connected to NATS; {full!r} not published")
        try:
            try:
                await self._context().publish(full, payload, stream=self.stream)
            except nats.js.errors.NoStreamResponseError:
                # The server lost its store: make the stream again, once.
                await self._ensure_stream()
                await self._context().publish(full, payload, stream=self.stream)
        except (nats.errors.Error, OSError) as exc:
            raise BusError(f"publishing to {full!r} failed: {exc!r}") from exc

    async def close(self) -> None:
        # Bounded: nats-py waits with `asyncio.wait_for` inside its calls, which may swallow
        # the cancellation; closing the connection below ends such a reader.
        running = await cancel_all(self._readers, CLOSE_READERS_S)
        if running:
            logger.error("%d bus readers did not stop when cancelled", len(running))
        self._readers.clear()
        nc, self._nc, self._js, self._jsm = self._nc, None, None, None
        if nc is None or nc.is_closed:
            return
        try:
            if nc.is_connected:
                await nc.drain()
            else:
                await nc.close()
        except Exception:
            logger.exception("closing the NATS connection failed")
            await nc.close()

    def _absolute(self, subject: str) -> str:
        if not SUBJECT.fullmatch(subject):
            raise ValueError(f"invalid bus subject {subject!r}")
        return f"{self.subject_prefix}.{subject}"

    def _client(self) -> Client:
        if self._nc is None:
            raise BusError("the NATS bus is not running")
        return self._nc

    def _context(self) -> JetStreamContext:
        if self._js is None:
            raise BusError("the NATS bus is not running")
        return self._js

    def _manager(self) -> JetStreamManager:
        if self._jsm is None:
            raise BusError("the NATS bus is not running")
        return self._jsm

    async def _ensure_stream(self) -> None:
        config = api.StreamConfig(
            name=self.stream,
            subjects=[f"{self.subject_prefix}.>"],
            retention=api.RetentionPolicy.LIMITS,
            storage=api.StorageType.FILE,
            discard=api.DiscardPolicy.OLD,
            max_age=self.max_age_seconds,
            max_msgs=self.max_messages,
            max_bytes=self.max_bytes,
            max_msg_size=self.max_message_bytes,
            num_replicas=self.replicas,
            duplicate_window=min(DUPLICATE_WINDOW_S, self.max_age_seconds),
        )
        jsm = self._manager()
        try:
            await jsm.add_stream(config)
        except nats.js.errors.BadRequestError as exc:
            if exc.err_code != STREAM_NAME_IN_USE:
                raise
            await jsm.update_stream(config)
            logger.info("updated the configuration of NATS stream %s", self.stream)

    async def _on_error(self, exc: Exception) -> None:
        if isinstance(exc, nats.errors.SlowConsumerError):
            logger.error("NATS dropped a message for a slow subscriber: %r", exc)
        elif self.connected:
            logger.warning("NATS error: %r", exc)
        else:
            logger.debug("NATS error while disconnected: %r", exc)

    async def _on_disconnected(self) -> None:
        if self._nc is not None:
            logger.warning("disconnected from NATS; reconnecting")

    async def _on_reconnected(self) -> None:
        url = self._nc.connected_url if self._nc else None
        logger.info("reconnected to NATS at %s", url.netloc if url else "?")


class _Reader:
    """Delivers one subject's messages to its handlers in stream order, through a succession
    of consumers each starting where the previous one stopped."""

    def __init__(
        self,
        bus: NatsBus,
        subject: str,
        handlers: list[Handler],
        last: int,
        stream_created: datetime | None,
    ) -> None:
        self.bus = bus
        self.subject = subject
        self.handlers = handlers
        self.last = last  # the stream sequence of the last message handled (or skipped)
        self.stream_created = stream_created  # tells the stream apart from a new one
        self.broken = False

    async def run(self) -> None:
        while True:
            try:
                await self._read()
            except Exception as exc:
                nc = self.bus._nc
                if nc is None or nc.is_closed:
                    return
                if not self.broken:
                    logger.warning(
                        "bus consumer of %s broke (%s); replacing it from stream sequence %d",
                        self.subject,
                        _describe(exc),
                        self.last + 1,
                    )
                else:
                    logger.debug("bus consumer of %s still broken: %s", self.subject, exc)
                self.broken = True
            await asyncio.sleep(self.bus.reconnect_wait_seconds)

    async def _read(self) -> None:
        bus = self.bus
        nc = bus._client()
        if not nc.is_connected:
            raise _Broken("not connected")
        jsm = bus._manager()
        try:
            info = await jsm.stream_info(bus.stream)
        except nats.js.errors.NotFoundError:
            await bus._ensure_stream()
            info = await jsm.stream_info(bus.stream)
        if info.created != self.stream_created or info.state.last_seq < self.last:
            # The server lost its store: every message of the new stream is new to us.
            logger.warning(
                "NATS stream %s was recreated (this replica had read up to sequence %d); "
                "reading %s from the new stream's start",
                bus.stream,
                self.last,
                self.subject,
            )
            self.last = 0
            self.stream_created = info.created
        name = uuid.uuid4().hex
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox)
        try:
            await jsm.add_consumer(
                bus.stream,
                api.ConsumerConfig(
                    name=name,
                    filter_subject=self.subject,
                    deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
                    opt_start_seq=self.last + 1,
                    ack_policy=api.AckPolicy.NONE,
                    inactive_threshold=CONSUMER_INACTIVE_S,
                    mem_storage=True,
                    num_replicas=1,
                ),
            )
            if self.broken:
                logger.info(
                    "bus consumer of %s replaced, from stream sequence %d",
                    self.subject,
                    self.last + 1,
                )
                self.broken = False
            await self._pull(nc, sub, f"$JS.API.CONSUMER.MSG.NEXT.{bus.stream}.{name}", inbox)
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
            if nc.is_connected:
                with contextlib.suppress(Exception):
                    await jsm.delete_consumer(bus.stream, name)

    async def _pull(self, nc: Client, sub: Subscription, next_subject: str, inbox: str) -> None:
        bus = self.bus
        request = json.dumps(
            {
                "batch": bus.batch,
                "expires": _nanoseconds(bus.heartbeat_seconds * 10),
                "idle_heartbeat": _nanoseconds(bus.heartbeat_seconds),
            }
        ).encode()
        expected = 1  # the consumer sequence of the next message
        while True:
            await nc.publish(next_subject, request, reply=inbox)
            remaining = bus.batch
            while remaining:
                try:
                    # Not next_msg's own timeout: its `asyncio.wait_for` swallows a cancellation
                    # that comes as a message does (Python 3.11), and `close` would wait on.
                    async with asyncio.timeout(bus.heartbeat_seconds * 3):
                        msg = await sub.next_msg(timeout=None)
                except TimeoutError:
                    raise _Broken("heartbeats stopped") from None
                headers = msg.headers or {}
                status = headers.get(api.Header.STATUS)
                if status == api.StatusCode.CONTROL_MESSAGE:
                    # A heartbeat names the last message the consumer sent: one lost on the
                    # way (while the connection was down) shows here if no other follows it.
                    sent = headers.get(api.Header.LAST_CONSUMER)
                    if sent is not None and int(sent) != expected - 1:
                        raise _Broken(f"consumer sent up to {sent}, received {expected - 1}")
                    continue
                if status in (api.StatusCode.NO_MESSAGES, api.StatusCode.REQUEST_TIMEOUT):
                    break  # this pull request is over; make the next
                if status:
                    description = headers.get(api.Header.DESCRIPTION, "")
                    raise _Broken(f"status {status} {description}")
                sequence = msg.metadata.sequence
                if sequence.consumer != expected:
                    raise _Broken(f"consumer sequence {sequence.consumer}, expected {expected}")
                expected += 1
                remaining -= 1
                self.last = sequence.stream
                await deliver(self.subject, self.handlers, msg.data)


def _nanoseconds(seconds: float) -> int:
    return int(seconds * 1_000_000_000)


def _describe(exc: Exception) -> str:
    return str(exc) if isinstance(exc, _Broken) else repr(exc)
