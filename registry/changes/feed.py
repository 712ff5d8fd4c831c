"""The change feed a client reads: pages after a cursor, and a live listener for SSE."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from registry.access import rule
from registry.access.principal import Principal
from registry.changes import log as changes
from registry.changes.events import ChangeEvent
from registry.changes.hub import Hub, Listener
from registry.core.clock import Clock
from registry.core.errors import BadRequest, Gone
from registry.core.http import whole_number

PAGE_DEFAULT = 200
PAGE_MAX = 1000


@dataclass(frozen=True)
class Page:
    events: list[ChangeEvent]
    cursor: int
    has_more: bool


class ChangeFeed:
    def __init__(self, engine: AsyncEngine, hub: Hub, clock: Clock) -> None:
        self._engine = engine
        self._hub = hub
        self._clock = clock

    async def page(self, principal: Principal, since: int | None, limit: int) -> Page:
        """Changes after `since` the caller may see; without `since`, just today's cursor."""
        async with self._engine.connect() as conn:
            upto = await changes.latest(conn)
            if since is None:
                return Page([], upto, False)
            await _check_cursor(conn, since, upto)
            events = await changes.visible_after(
                conn, principal.keys, self._clock.now(), since, upto, limit + 1
            )
        if len(events) > limit:
            return Page(events[:limit], events[limit - 1].seq, True)
        return Page(events, upto, False)

    async def listen(self, principal: Principal) -> Listener:
        keys = principal.keys
        async with self._engine.connect() as conn:
            listener = Listener(keys, await rule.held_spaces(conn, keys, self._clock.now()))
        self._hub.add(listener)
        return listener

    async def refresh(self, listener: Listener) -> None:
        """Read again which spaces a listener sees, after it lost a role somewhere."""
        listener.stale = False
        async with self._engine.connect() as conn:
            held = await rule.held_spaces(conn, listener.keys, self._clock.now())
            self._hub.reindex(listener, held)

    def leave(self, listener: Listener) -> None:
        self._hub.remove(listener)

    async def backlog(self, listener: Listener, since: int) -> list[ChangeEvent]:
        """What a resuming listener missed: changes after `since` up to where the hub was when
        it joined; later ones arrive through the hub."""
        upto = self._hub.position
        async with self._engine.connect() as conn:
            await _check_cursor(conn, since, max(upto, await changes.latest(conn)))
            found: list[ChangeEvent] = []
            while since < upto:
                events = await changes.visible_after(
                    conn, listener.keys, self._clock.now(), since, upto, PAGE_MAX
                )
                found.extend(events)
                if len(events) < PAGE_MAX:
                    break
                since = events[-1].seq
        return found


def parse_cursor(value: str | None) -> int | None:
    """A cursor we gave out: ASCII digits within int64 (`since=`, `Last-Event-ID`)."""
    if value is None or value == "":
        return None
    cursor = whole_number(value)
    if cursor is None:
        raise BadRequest(
            f"cursor {value!r} is not one this registry gave out", code="invalidCursor"
        )
    return cursor


async def _check_cursor(conn: AsyncConnection, since: int, upto: int) -> None:
    if since > upto:
        raise Gone(
            f"cursor {since} is ahead of this registry's change log (at {upto}); "
            "list your drives again and continue from a fresh cursor"
        )
    horizon = await changes.pruned_through(conn)
    if since < horizon:
        raise Gone(
            f"changes after cursor {since} are no longer kept (the log starts after {horizon}); "
            "list your drives again and continue from a fresh cursor"
        )
