"""Connections spread over the workers of one node by least connections.

`SO_REUSEPORT` spreads new connections by a hash of their addresses. For a few long-lived
connections (sync clients that keep theirs open, SSE streams) that leaves one worker with many
more than another (32 connections over two workers split 19/13 or worse more than a third of
the time), and the clients of the busier one wait longer. Here every worker accepts from the one
listening socket the parent made, one connection at a time, and only while it holds no more
connections than the least busy live worker says it holds (in memory the node's processes
share). The worker that says least is never held back, so some worker always accepts.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import MutableSequence

import uvicorn

logger = logging.getLogger("spacereg")

ABSENT = -1  # the slot of a worker that is not running
HELD_BACK_S = 0.005  # how soon a worker with more than its share looks again
OUT_OF_RESOURCES_S = 1.0  # how long a worker that could not accept (no file left) waits


class ConnectionCounts:
    """Each worker's open connections, one slot per worker, in shared memory."""

    def __init__(self, slots: MutableSequence[int], index: int) -> None:
        self._slots = slots
        self._index = index

    def tell(self, count: int) -> None:
        self._slots[self._index] = count

    def least(self) -> int:
        """The fewest connections a live worker said it holds (0: none said)."""
        return min((count for count in self._slots if count != ABSENT), default=0)


class BalancedServer(uvicorn.Server):
    """uvicorn's server, accepting from a shared socket while this worker is least busy."""

    def __init__(
        self, config: uvicorn.Config, listener: socket.socket, counts: ConnectionCounts
    ) -> None:
        super().__init__(config)
        self._listener = listener
        self._counts = counts
        self._accepting: asyncio.Task[None] | None = None
        self._connecting: set[asyncio.Task[None]] = set()  # accepted, not yet uvicorn's

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])  # the app and its lifespan; no listener of its own
        self._listener.setblocking(False)
        self._accepting = asyncio.create_task(self._accept())

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self._accepting is not None:
            self._accepting.cancel()
        self._listener.close()  # this process's copy; the other workers keep theirs
        await super().shutdown(sockets)

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            held = len(self.server_state.connections) + len(self._connecting)
            self._counts.tell(held)
            if held > self._counts.least():
                await asyncio.sleep(HELD_BACK_S)
                continue
            try:
                sock, _address = await loop.sock_accept(self._listener)
            except OSError:  # out of files, for instance: as asyncio's own servers do, wait
                logger.exception("could not accept a connection; trying again in a second")
                await asyncio.sleep(OUT_OF_RESOURCES_S)
                continue
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
        except (OSError, ConnectionError):  # the client left, or its TLS handshake failed
            sock.close()
