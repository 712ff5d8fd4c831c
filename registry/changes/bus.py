"""The bus between registry replicas: a fast path that tells every replica of a committed change,
so each can push it to the Server-Sent-Events clients connected to it. The database stays the
source of truth (replicas also poll it), so a publish that fails is logged, not fatal.

`LocalBus` serves one process; `registry.nats_bus.NatsBus` serves several replicas.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

__all__ = ["Bus", "BusError", "Handler", "LocalBus", "deliver"]

logger = logging.getLogger("spacereg.bus")

Handler = Callable[[bytes], Awaitable[None]]


class BusError(Exception):
    """A message could not be published (or the bus could not start); rely on the database."""


@runtime_checkable
class Bus(Protocol):
    async def start(self) -> None: ...

    async def publish(self, subject: str, payload: bytes) -> None:
        """Hand `payload` to every subscriber of `subject` in every replica; raise `BusError`
        when that cannot be promised."""
        ...

    def subscribe(self, subject: str, handler: Handler) -> None:
        """Call `handler` for every message on `subject` published after `start()`; call this
        before `start()`."""
        ...

    async def close(self) -> None: ...


async def deliver(subject: str, handlers: list[Handler], payload: bytes) -> None:
    """Await each handler in turn; one that raises is logged and does not stop the others."""
    for handler in handlers:
        try:
            await handler(payload)
        except Exception:
            name = getattr(handler, "__qualname__", repr(handler))
            logger.exception("bus handler %s for subject %s failed", name, subject)


class LocalBus:
    """Every replica is this process: publishing calls the subject's handlers directly."""

    def __init__(self) -> None:
        self._handlers: defaultdict[str, list[Handler]] = defaultdict(list)

    async def start(self) -> None:
        pass

    async def publish(self, subject: str, payload: bytes) -> None:
        await deliver(subject, list(self._handlers.get(subject, ())), payload)

    def subscribe(self, subject: str, handler: Handler) -> None:
        self._handlers[subject].append(handler)

    async def close(self) -> None:
        self._handlers.clear()
