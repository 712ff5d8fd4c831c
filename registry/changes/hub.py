"""Fan-out of logged changes to the Server-Sent-Events clients connected to this process.

The tailer reads the change log in order (woken by `ChangeSignal`, else polling) and hands each
change to the listeners that may see it, found through two indexes: by space and by principal.
A listener is a queue; one that falls too far behind is closed, and its client resumes from
its last event id, so a slow client never holds up the others.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from common.waiting import set_within
from registry.access import rule
from registry.access.principal import PrincipalKey
from registry.changes import log as changes
from registry.changes.events import ChangeEvent
from registry.core.clock import Clock

LISTENER_QUEUE_MAX = 1000
TAIL_BATCH = 1000


class Listener:
    """One connected client: who it is, which spaces it sees (with role expiry), what's queued."""

    __slots__ = ("_waiter", "keys", "overflowed", "pending", "spaces", "stale")

    def __init__(self, keys: frozenset[PrincipalKey], spaces: dict[str, datetime | None]) -> None:
        self.keys = keys
        self.spaces = spaces
        self.pending: list[ChangeEvent] = []
        self.overflowed = False
        self.stale = False  # lost a role: which spaces it sees must be read again
        self._waiter: asyncio.Future[None] | None = None

    def push(self, event: ChangeEvent) -> None:
        if len(self.pending) >= LISTENER_QUEUE_MAX:
            self.overflowed = True
        else:
            self.pending.append(event)
        self.wake()

    def wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def wait(self) -> None:
        """Until something is queued or `wake()` is called (the hub's keep-alive tick does)."""
        if self.pending or self.overflowed:
            return
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def take(self) -> list[ChangeEvent]:
        pending, self.pending = self.pending, []
        return pending


class Hub:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.position = 0
        self._by_space: dict[str, set[Listener]] = {}
        self._by_key: dict[PrincipalKey, set[Listener]] = {}
        self._listeners: set[Listener] = set()

    def __len__(self) -> int:
        return len(self._listeners)

    async def keep_alive(self, interval_s: float) -> None:
        """Wake every listener each `interval_s`; one with nothing queued sends a keep-alive.
        One timer for all connections rather than one each."""
        while True:
            await asyncio.sleep(interval_s)
            for listener in list(self._listeners):
                listener.wake()

    def add(self, listener: Listener) -> None:
        self._listeners.add(listener)
        for space_id in listener.spaces:
            self._by_space.setdefault(space_id, set()).add(listener)
        for key in listener.keys:
            self._by_key.setdefault(key, set()).add(listener)

    def remove(self, listener: Listener) -> None:
        self._listeners.discard(listener)
        for space_id in listener.spaces:
            self._forget(self._by_space, space_id, listener)
        for key in listener.keys:
            self._forget(self._by_key, key, listener)

    def reindex(self, listener: Listener, spaces: dict[str, datetime | None]) -> None:
        for space_id in listener.spaces.keys() - spaces.keys():
            self._forget(self._by_space, space_id, listener)
        for space_id in spaces.keys() - listener.spaces.keys():
            self._by_space.setdefault(space_id, set()).add(listener)
        listener.spaces = spaces

    def publish(self, events: list[ChangeEvent]) -> None:
        now = self._clock.now()
        for event in events:
            targets = {
                listener
                for listener in self._by_space.get(event.space_id, ())
                if rule.still_held(listener.spaces, event.space_id, now)
            }
            losers = {listener for key in event.lost for listener in self._by_key.get(key, ())}
            grantee = event.grantee()
            if grantee is not None:
                for listener in self._by_key.get(grantee, ()):
                    listener.spaces[event.space_id] = None
                    self._by_space.setdefault(event.space_id, set()).add(listener)
                    targets.add(listener)
            # A grant may come with an expiry, and a changed member may have a new one: the
            # listeners of that principal read their spaces, with expiries, again.
            for key in filter(None, (grantee, event.changed_member())):
                for listener in self._by_key.get(key, ()):
                    listener.stale = True
            for listener in targets | losers:
                listener.push(event)
            for listener in losers:
                # Stop at once; the listener reads its spaces again (`stale`) and gets the
                # space back if it still holds a role through another group.
                self._forget(self._by_space, event.space_id, listener)
                listener.spaces.pop(event.space_id, None)
                listener.stale = True
            if event.kind == "deleted":
                for listener in self._by_space.pop(event.space_id, ()):
                    listener.spaces.pop(event.space_id, None)
        if events:
            self.position = events[-1].seq

    @staticmethod
    def _forget(index: dict[Any, set[Listener]], key: object, listener: Listener) -> None:
        listeners = index.get(key)
        if listeners is not None:
            listeners.discard(listener)
            if not listeners:
                del index[key]


class Tailer:
    """Reads the change log after the hub's position and publishes it, in order."""

    def __init__(self, engine: AsyncEngine, hub: Hub, poll_seconds: float = 1.0) -> None:
        self._engine = engine
        self._hub = hub
        self._poll_seconds = poll_seconds
        self._woken = asyncio.Event()

    def wake(self) -> None:
        self._woken.set()

    async def start_position(self) -> None:
        """Begin at the end of the log (once, at start-up): listeners catch up on older
        changes from the database. A restarted `run` keeps the position it reached."""
        async with self._engine.connect() as conn:
            self._hub.position = await changes.latest(conn)

    async def run(self) -> None:
        while True:
            await set_within(self._woken, self._poll_seconds)
            self._woken.clear()
            await self.catch_up()

    async def catch_up(self) -> None:
        async with self._engine.connect() as conn:
            while True:
                events = await changes.after(conn, self._hub.position, TAIL_BATCH)
                if not events:
                    return
                self._hub.publish(events)
                if len(events) < TAIL_BATCH:
                    return
