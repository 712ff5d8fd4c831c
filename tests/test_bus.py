"""The bus between replicas: LocalBus in one process, NatsBus against a real nats-server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import nats
import pytest

from registry.changes.bus import Bus, BusError, LocalBus
from registry.changes.nats_bus import NatsBus
from tests.nats import NatsServer, nats_server
from tests.servers import free_port

WAIT_S = 10


@pytest.fixture
def server(tmp_path: Path) -> Iterator[NatsServer]:
    with nats_server(tmp_path) as running:
        yield running


class Inbox:
    """A handler that remembers what it was given."""

    def __init__(self) -> None:
        self.payloads: list[bytes] = []
        self._changed = asyncio.Condition()

    async def __call__(self, payload: bytes) -> None:
        async with self._changed:
            self.payloads.append(payload)
            self._changed.notify_all()

    async def wait_for(self, count: int) -> list[bytes]:
        async with self._changed:
            await asyncio.wait_for(
                self._changed.wait_for(lambda: len(self.payloads) >= count), WAIT_S
            )
        return self.payloads


def fast_bus(url: str, **options: Any) -> NatsBus:
    """Short timings, so a broken consumer is noticed and replaced within a second."""
    defaults: dict[str, Any] = {
        "connect_timeout_seconds": 1,
        "start_timeout_seconds": 5,
        "reconnect_wait_seconds": 0.1,
        "request_timeout_seconds": 1,
        "heartbeat_seconds": 0.25,
    }
    return NatsBus([url], **{**defaults, **options})


@contextlib.asynccontextmanager
async def started(*buses: NatsBus) -> AsyncIterator[None]:
    try:
        for bus in buses:
            await bus.start()
        yield
    finally:
        for bus in buses:
            await bus.close()


async def publish_when_back(bus: NatsBus, subject: str, payload: bytes) -> None:
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            await bus.publish(subject, payload)
            return
        except BusError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


def test_both_buses_satisfy_the_protocol() -> None:
    local: Bus = LocalBus()
    remote: Bus = NatsBus(["nats://127.0.0.1:4222"])
    assert isinstance(local, Bus)
    assert isinstance(remote, Bus)


async def test_local_bus_delivers_in_order_and_isolates_a_raising_handler(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = LocalBus()
    first, last, other = Inbox(), Inbox(), Inbox()

    async def broken(payload: bytes) -> None:
        raise RuntimeError(f"cannot handle {payload!r}")

    bus.subscribe("changes", first)
    bus.subscribe("changes", broken)
    bus.subscribe("changes", last)
    bus.subscribe("other", other)
    await bus.start()
    for number in range(5):
        await bus.publish("changes", b"%d" % number)
    await bus.close()

    expected = [b"0", b"1", b"2", b"3", b"4"]
    assert first.payloads == expected
    assert last.payloads == expected
    assert other.payloads == []
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(failures) == 5
    assert failures[0].exc_info and "cannot handle" in str(failures[0].exc_info[1])


async def test_two_replicas_each_receive_every_message_in_order(server: NatsServer) -> None:
    one, two = fast_bus(server.url), fast_bus(server.url)
    inbox_one, inbox_two, elsewhere = Inbox(), Inbox(), Inbox()
    one.subscribe("changes", inbox_one)
    two.subscribe("changes", inbox_two)
    two.subscribe("other", elsewhere)
    async with started(one, two):
        for number in range(10):
            await (one if number % 2 else two).publish("changes", b"%d" % number)
        expected = [b"%d" % number for number in range(10)]
        assert await inbox_one.wait_for(10) == expected
        assert await inbox_two.wait_for(10) == expected
        await asyncio.sleep(0.3)
        assert len(inbox_one.payloads) == len(inbox_two.payloads) == 10
        assert elsewhere.payloads == []


async def test_a_burst_of_1000_messages_all_arrive_in_order(server: NatsServer) -> None:
    one, two = fast_bus(server.url), fast_bus(server.url)
    inbox_one, inbox_two = Inbox(), Inbox()
    one.subscribe("changes", inbox_one)
    two.subscribe("changes", inbox_two)
    async with started(one, two):
        expected = [b"change %d" % number for number in range(1000)]
        for payload in expected:
            await one.publish("changes", payload)
        assert await inbox_one.wait_for(1000) == expected
        assert await inbox_two.wait_for(1000) == expected


async def test_a_raising_handler_does_not_stop_delivery(
    server: NatsServer, caplog: pytest.LogCaptureFixture
) -> None:
    bus = fast_bus(server.url)
    inbox = Inbox()

    async def broken(payload: bytes) -> None:
        raise ValueError("broken handler")

    bus.subscribe("changes", broken)
    bus.subscribe("changes", inbox)
    async with started(bus):
        for number in range(3):
            await bus.publish("changes", b"%d" % number)
        assert await inbox.wait_for(3) == [b"0", b"1", b"2"]
    failures = [r.exc_info[1] for r in caplog.records if r.exc_info]
    assert [str(exc) for exc in failures] == ["broken handler"] * 3


async def test_messages_published_before_start_are_not_delivered(server: NatsServer) -> None:
    early, late = fast_bus(server.url), fast_bus(server.url)
    inbox = Inbox()
    late.subscribe("changes", inbox)
    async with started(early):
        await early.publish("changes", b"before")
        async with started(late):
            await early.publish("changes", b"after")
            assert await inbox.wait_for(1) == [b"after"]


async def test_publish_while_the_server_is_down_raises_bus_error(server: NatsServer) -> None:
    bus = fast_bus(server.url)
    async with started(bus):
        server.stop()
        began = time.monotonic()
        with pytest.raises(BusError):
            await bus.publish("changes", b"lost")
        assert time.monotonic() - began < 3
        assert not bus.connected


async def test_start_without_a_server_raises_bus_error() -> None:
    bus = fast_bus(f"nats://127.0.0.1:{free_port()}", start_timeout_seconds=1)
    began = time.monotonic()
    with pytest.raises(BusError):
        await bus.start()
    assert time.monotonic() - began < 3
    await bus.close()


async def test_buses_work_again_after_the_server_restarts(server: NatsServer) -> None:
    one, two = fast_bus(server.url), fast_bus(server.url)
    inbox_one, inbox_two = Inbox(), Inbox()
    one.subscribe("changes", inbox_one)
    two.subscribe("changes", inbox_two)
    async with started(one, two):
        await one.publish("changes", b"before")
        await inbox_one.wait_for(1)
        await inbox_two.wait_for(1)

        server.stop()
        with pytest.raises(BusError):
            await two.publish("changes", b"while down")
        server.start()

        await publish_when_back(two, "changes", b"after")
        await publish_when_back(one, "changes", b"after again")
        expected = [b"before", b"after", b"after again"]
        assert await inbox_one.wait_for(3) == expected
        assert await inbox_two.wait_for(3) == expected


async def test_messages_unread_when_the_server_restarts_arrive_once_in_order(
    server: NatsServer,
) -> None:
    publisher, slow = fast_bus(server.url), fast_bus(server.url, batch=2)
    gate, inbox = asyncio.Event(), Inbox()

    async def gated(payload: bytes) -> None:
        await gate.wait()
        await inbox(payload)

    slow.subscribe("changes", gated)
    async with started(publisher, slow):
        for number in range(6):  # one in the handler, one pulled, four left in the stream
            await publisher.publish("changes", b"%d" % number)
        server.stop()
        server.start()
        gate.set()
        await publish_when_back(publisher, "changes", b"6")
        expected = [b"%d" % number for number in range(7)]
        assert await inbox.wait_for(7) == expected
        await asyncio.sleep(0.3)
        assert inbox.payloads == expected


async def test_buses_work_again_after_the_server_lost_its_store(server: NatsServer) -> None:
    one, two = fast_bus(server.url), fast_bus(server.url)
    inbox_one, inbox_two = Inbox(), Inbox()
    one.subscribe("changes", inbox_one)
    two.subscribe("changes", inbox_two)
    async with started(one, two):
        for number in range(3):
            await one.publish("changes", b"old %d" % number)
        await inbox_one.wait_for(3)
        await inbox_two.wait_for(3)

        server.stop()
        shutil.rmtree(server.store_dir)
        server.start()

        await publish_when_back(two, "changes", b"new")
        expected = [b"old 0", b"old 1", b"old 2", b"new"]
        assert await inbox_one.wait_for(4) == expected
        assert await inbox_two.wait_for(4) == expected


@pytest.mark.parametrize("outage_s", [0.1, 1.0], ids=["within-heartbeats", "heartbeats-missed"])
async def test_a_replica_cut_off_from_a_running_server_misses_nothing(
    server: NatsServer, outage_s: float
) -> None:
    async with Proxy(server.port) as proxy:
        cut_off, direct = fast_bus(proxy.url), fast_bus(server.url)
        inbox = Inbox()
        cut_off.subscribe("changes", inbox)
        async with started(cut_off, direct):
            await direct.publish("changes", b"0")
            await inbox.wait_for(1)

            await proxy.cut()
            for number in range(1, 21):
                await direct.publish("changes", b"%d" % number)
            await asyncio.sleep(outage_s)
            await proxy.restore()

            expected = [b"%d" % number for number in range(21)]
            assert await inbox.wait_for(21) == expected
            await direct.publish("changes", b"21")
            assert await inbox.wait_for(22) == [*expected, b"21"]


async def test_the_stream_is_bounded_and_kept_on_disk(server: NatsServer) -> None:
    bus = fast_bus(server.url, stream="EVENTS", subject_prefix="reg", max_age_seconds=600)
    async with started(bus):
        client = await nats.connect(server.url)
        try:
            config = (await client.jsm().stream_info("EVENTS")).config
            assert config.subjects == ["reg.>"]
            assert config.storage == "file"
            assert config.max_age == 600
            assert config.max_msgs is not None and config.max_msgs > 0
            assert config.max_bytes is not None and config.max_bytes > 0
        finally:
            await client.close()
    longer = fast_bus(server.url, stream="EVENTS", subject_prefix="reg", max_age_seconds=900)
    async with started(longer):
        client = await nats.connect(server.url)
        try:
            assert (await client.jsm().stream_info("EVENTS")).config.max_age == 900
        finally:
            await client.close()


async def test_subjects_are_checked_and_subscribing_comes_first(server: NatsServer) -> None:
    bus = fast_bus(server.url)
    with pytest.raises(ValueError):
        bus.subscribe("changes.*", Inbox())
    async with started(bus):
        with pytest.raises(RuntimeError):
            bus.subscribe("changes", Inbox())
        with pytest.raises(ValueError):
            await bus.publish("", b"")


class Proxy:
    """A TCP relay to a local port that can be cut (connections dropped, new ones refused)
    and restored, to take one client off a server that keeps running."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pipes: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Proxy:
        await self.restore()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.cut()

    async def restore(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.close()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers |= {writer, up_writer}
        pipes = {
            asyncio.create_task(self._pipe(reader, up_writer)),
            asyncio.create_task(self._pipe(up_reader, writer)),
        }
        self._pipes |= pipes
        await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        for task in pipes:
            task.cancel()
        for end in (writer, up_writer):
            end.close()
            self._writers.discard(end)
        self._pipes -= pipes

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()


async def test_a_bus_closes_at_once_while_messages_flow(server: NatsServer) -> None:
    """A reader cancelled just as a message comes stops (nats-py's own `next_msg` timeout
    swallowed that cancellation, and `close` waited for the reader)."""
    publisher = fast_bus(server.url)
    await publisher.start()

    async def flowing() -> None:
        while True:
            await publisher.publish("changes", b"x")
            await asyncio.sleep(0.001)

    flow = asyncio.create_task(flowing())
    try:
        for _round in range(10):
            reader = fast_bus(server.url)
            reader.subscribe("changes", Inbox())
            await reader.start()
            await asyncio.sleep(0.05)
            started_at = time.monotonic()
            await reader.close()
            assert time.monotonic() - started_at < 3
    finally:
        flow.cancel()
        await asyncio.gather(flow, return_exceptions=True)
        await publisher.close()
