"""A write transaction that may log changes.

Other wings register fan-outs (the outbox queues webhook deliveries; peers will queue theirs):
each sees the changes the transaction logged and writes its rows in the same transaction, so
a change and everything it causes commit together or not at all. After the commit the change
signal wakes the readers here and on other replicas.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from registry.changes.events import ChangeEvent
from registry.changes.log import LOGGED
from registry.changes.signal import ChangeSignal

Fanout = Callable[[AsyncConnection, Sequence[ChangeEvent]], Awaitable[None]]


class UnitOfWork:
    def __init__(self, engine: AsyncEngine, signal: ChangeSignal | None = None) -> None:
        self.engine = engine
        self._signal = signal
        self._fanouts: list[Fanout] = []

    def fan_out(self, fanout: Fanout) -> None:
        """Have `fanout` see every change logged from now on, inside its transaction."""
        self._fanouts.append(fanout)

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.begin() as conn:
            logged: list[ChangeEvent] = []
            conn.info[LOGGED] = logged
            try:
                yield conn
                if logged:
                    for fanout in self._fanouts:
                        await fanout(conn, logged)
            finally:
                del conn.info[LOGGED]
        if logged and self._signal is not None:
            await self._signal.committed()
