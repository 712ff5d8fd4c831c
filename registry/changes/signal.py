"""Tell the change tailer and the delivery worker, here and on other replicas, that a
transaction wrote changes. Only a hint: they also poll the database, so a lost hint delays a
change by one poll interval but never loses it."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable

from registry.changes.bus import Bus

logger = logging.getLogger("spacereg.signal")

SUBJECT = "changes"


class ChangeSignal:
    def __init__(self, bus: Bus) -> None:
        self._bus = bus
        self._listeners: list[Callable[[], None]] = []
        # Names this process on the bus, so that it does not wake twice for its own commits.
        self._origin = secrets.token_bytes(8)
        bus.subscribe(SUBJECT, self._heard)

    def listen(self, wake: Callable[[], None]) -> None:
        self._listeners.append(wake)

    async def committed(self) -> None:
        self._wake()
        try:
            await self._bus.publish(SUBJECT, self._origin)
        except Exception as exc:  # the database poll covers a bus that is down
            logger.warning("could not tell other replicas of a change: %s", exc)

    async def _heard(self, payload: bytes) -> None:
        if payload != self._origin:
            self._wake()

    def _wake(self) -> None:
        for wake in self._listeners:
            wake()
