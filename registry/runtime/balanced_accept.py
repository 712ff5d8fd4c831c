"""Connections spread over the workers of one node by least connections.

`SO_REUSEPORT` spreads new connections by a hash of their addresses. For a few long-lived
connections (sync clients that keep theirs open, SSE streams) that leaves one worker with many
more than another (32 connections over two workers split 19/13 or worse more than a third of
the time), and the clients of the busier one wait longer. Here every worker accepts from the one
listening socket the parent made, one connection at a time, and only while it holds no more
connections than the least busy worker says it holds (in memory the node's processes share).
A worker says so again every `TELL_S`; one that has not said it for `STALE_S` (it died, or its
event loop is stuck on a long computation) counts for nothing, so that the others do not wait
for it. The worker that says least is never held back, so some worker always accepts.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import time
from collections.abc import Callable, MutableSequence

import uvicorn

from common.waiting import cancel_all

logger = logging.getLogger("spacereg")

TELL_S = 0.05  # how often a worker says how many connections it holds
STALE_S = 0.25  # a worker silent for this long counts for nothing
HELD_BACK_S = 0.005  # how soon a worker with more than its share looks again
OUT_OF_RESOURCES_S = 1.0  # how long a worker that could not accept (no file left) waits
# Why accepting fails when this process is out of something (as asyncio's servers know them).
OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class ConnectionCounts:
    """Each worker's open connections and when it last said so, a slot per worker, in shared
    memory (`counts` and `said_at`, of `time.monotonic`, which every process reads alike)."""

    def __init__(
        self,
        counts: MutableSequence[int],
        said_at: MutableSequence[float],
        index: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._counts = counts
        self._said_at = said_at
        self._index = index
        self._clock = clock

    def tell(self, count: int) -> None:
        self._counts[self._index] = count
        self._said_at[self._index] = self._clock()

    def withdraw(self) -> None:
        """Count for nothing until told again (a worker that cannot accept, or stops)."""
        self._said_at[self._index] = 0.0

    def least(self) -> int:
        """The fewest connections a worker said it holds lately (0: none said)."""
        since = self._clock() - STALE_S
        told = zip(self._counts, self._said_at, strict=True)
        return min((count for count, said_at in told if said_at > since), default=0)


class BalancedServer(uvicorn.Server):
    """uvicorn's server, accepting from a shared socket while this worker is least busy."""

    def __init__(
        self, config: uvicorn.Config, listener: socket.socket, counts: ConnectionCounts
    ) -> None:
        super().__init__(config)
        self._listener = listener
        self._counts = counts
        self._tasks: list[asyncio.Task[None]] = []
        self._connecting: set[asyncio.Task[None]] = set()  # accepted, not yet uvicorn's
        self._withdrawn = False  # out of resources: says nothing until it accepts again

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])  # the app and its lifespan; no listener of its own
        if self.should_exit:  # the app did not start
            return
        self._listener.setblocking(False)
        self._tasks = [asyncio.create_task(self._accept()), asyncio.create_task(self._tell())]
        for task in self._tasks:
            task.add_done_callback(self._stop_if_failed)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._counts.withdraw()
        await cancel_all([*self._tasks, *self._connecting])
        self._listener.close()  # this process's copy; the other workers keep theirs
        await super().shutdown(sockets)

    def _held(self) -> int:
        return len(self.server_state.connections) + len(self._connecting)

    def _say(self, held: int) -> None:
        if not self._withdrawn:
            self._counts.tell(held)

    async def _tell(self) -> None:
        while True:
            self._say(self._held())
            await asyncio.sleep(TELL_S)

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            held = self._held()
            self._say(held)
            if held > self._counts.least():
                await asyncio.sleep(HELD_BACK_S)
                continue
            try:
                sock, _address = await loop.sock_accept(self._listener)
            except OSError as exc:
                if exc.errno in OUT_OF_RESOURCES:  # as asyncio's own servers do: wait
                    logger.error(
                        "could not accept a connection (%s); trying again in a second", exc
                    )
                    self._withdrawn = True  # so that the others do not wait for this one
                    self._counts.withdraw()
                    await asyncio.sleep(OUT_OF_RESOURCES_S)
                # Otherwise the client left before it was accepted, or the network failed it.
                continue
            self._withdrawn = False
            # Its own task: a TLS handshake must not hold up the next accept.
            connecting = asyncio.create_task(self._connect(loop, sock))
            self._connecting.add(connecting)
            connecting.add_done_callback(self._connecting.discard)

    async def _connect(self, loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
        config = self.config
        protocol = config.http_protocol_class(  # type: ignore[call-arg]
            config=config, server_state=self.server_state, app_state=self.lifespan.state
        )
        try:
            await loop.connect_accepted_socket(lambda: protocol, sock, ssl=config.ssl)
        except OSError:  # the client left, or its TLS handshake failed
            sock.close()
        except asyncio.CancelledError:  # shutting down before the handshake ended
            sock.close()
            raise

    def _stop_if_failed(self, task: asyncio.Task[None]) -> None:
        """A worker that no longer accepts stops, and the parent starts another."""
        failure = None if task.cancelled() else task.exception()
        if failure is not None:
            logger.error("a worker's accepting failed; stopping it", exc_info=failure)
            self._counts.withdraw()
            self.should_exit = True
