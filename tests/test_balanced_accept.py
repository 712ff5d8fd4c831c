"""Least-connections accepting (`serve --workers N`), one worker in this process: it holds back
while another worker says it holds fewer connections, stops waiting for a worker that has
stopped saying so, and says nothing itself while it cannot accept."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections.abc import AsyncIterator

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from registry.runtime.balanced_accept import STALE_S, TELL_S, BalancedServer, ConnectionCounts
from tests.waiting import eventually

HERE, OTHER = 0, 1


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_least_is_of_the_workers_that_said_so_lately() -> None:
    clock = FakeClock()
    counts, said_at = [0, 0, 0], [0.0, 0.0, 0.0]
    workers = [ConnectionCounts(counts, said_at, n, clock) for n in range(3)]
    assert workers[0].least() == 0  # nobody said anything yet
    workers[0].tell(5)
    workers[1].tell(3)
    workers[2].tell(4)
    assert workers[0].least() == 3
    workers[1].withdraw()
    assert workers[0].least() == 4
    clock.now += STALE_S / 2
    workers[0].tell(6)
    clock.now += STALE_S / 2 + 0.01  # worker 2 fell silent
    assert workers[0].least() == 6


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    headers = [(b"content-length", b"2")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"ok"})


@contextlib.asynccontextmanager
async def serving(counts: list[int], said_at: list[float]) -> AsyncIterator[int]:
    """A `BalancedServer` in slot `HERE` on a listening socket of its own; yields its port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    config = uvicorn.Config(app, log_config=None, lifespan="on")
    server = BalancedServer(config, listener, ConnectionCounts(counts, said_at, HERE))
    task = asyncio.create_task(server.serve())
    try:
        assert await eventually(lambda: server.started, 10)
        yield listener.getsockname()[1]
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def answered(port: int, seconds: float) -> tuple[bool, asyncio.StreamWriter]:
    """Whether a new connection was answered within `seconds` (it stays open)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), seconds)
    except TimeoutError:
        return False, writer
    return head.startswith(b"HTTP/1.1 200"), writer


async def test_a_worker_holds_back_while_another_holds_fewer_and_not_once_it_falls_silent() -> None:
    counts, said_at = [0, 0], [0.0, 0.0]
    other = ConnectionCounts(counts, said_at, OTHER)

    async def other_worker_holding_none() -> None:
        while True:
            other.tell(0)
            await asyncio.sleep(TELL_S)

    telling = asyncio.create_task(other_worker_holding_none())
    opened = []
    try:
        async with serving(counts, said_at) as port:
            first, writer = await answered(port, 2)
            opened.append(writer)
            assert first  # 0 held here, as few as the other worker
            second, writer = await answered(port, 3 * STALE_S)
            opened.append(writer)
            assert not second  # 1 held here, more than the other's 0: left to the other
            telling.cancel()  # the other worker dies, or hangs: this one takes the waiting
            third, writer = await answered(port, 4 * STALE_S)  # connection, then the next
            opened.append(writer)
            assert third
            assert counts[HERE] >= 2
    finally:
        telling.cancel()
        for writer in opened:
            writer.close()


async def test_a_worker_out_of_files_holds_no_other_back(monkeypatch: pytest.MonkeyPatch) -> None:
    counts, said_at = [0, 0], [0.0, 0.0]
    other = ConnectionCounts(counts, said_at, OTHER)

    async def out_of_files(sock: socket.socket) -> tuple[socket.socket, object]:
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(asyncio.get_running_loop(), "sock_accept", out_of_files)
    async with serving(counts, said_at):
        other.tell(3)
        assert await eventually(lambda: other.least() == 3, 4 * STALE_S)
        await asyncio.sleep(2 * TELL_S)  # it keeps saying nothing while it cannot accept
        other.tell(3)
        assert other.least() == 3
