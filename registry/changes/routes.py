"""The change feed: `GET /api/v1/changes?since=` pages, `GET /api/v1/events` as SSE."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from registry.access.principal import Authenticate
from registry.changes.events import ChangeEvent
from registry.changes.feed import PAGE_DEFAULT, PAGE_MAX, ChangeFeed, parse_cursor
from registry.changes.hub import Listener
from registry.core.errors import BadRequest
from registry.core.http import query, whole_number
from registry.core.responses import JSONResponse
from registry.core.routing import Resource

SSE_RETRY_MS = 3000


class ChangeRoutes:
    """The change feed and its event stream, bound to the feed and the caller's authentication."""

    def __init__(self, feed: ChangeFeed, authenticate: Authenticate) -> None:
        self._feed = feed
        self._authenticate = authenticate

    async def change_page(self, request: Request) -> Response:
        principal = await self._authenticate(request)
        params = query(request)
        since = parse_cursor(params.get("since"))
        limit = _limit(params.get("limit"))
        page = await self._feed.page(principal, since, limit)
        return JSONResponse(
            {
                "value": [event.json() for event in page.events],
                "cursor": str(page.cursor),
                "hasMore": page.has_more,
            }
        )

    async def event_stream(self, request: Request) -> Response:
        principal = await self._authenticate(request)
        params = query(request)
        since = parse_cursor(request.headers.get("last-event-id") or params.get("since"))
        feed = self._feed
        listener = await feed.listen(principal)
        try:
            backlog = [] if since is None else await feed.backlog(listener, since)
        except BaseException:
            feed.leave(listener)
            raise
        return EventStream(feed, listener, since or 0, backlog)

    def routes(self) -> list[Route]:
        return [
            Resource("/api/v1/changes", {"GET": self.change_page}),
            Resource("/api/v1/events", {"GET": self.event_stream}),
        ]


class EventStream(Response):
    """Streams a listener's events until the client goes. Two tasks per client: this one,
    and one waiting for the disconnect, so an idle client costs a few kilobytes."""

    media_type = "text/event-stream"

    def __init__(
        self,
        feed: ChangeFeed,
        listener: Listener,
        since: int,
        backlog: list[ChangeEvent],
    ) -> None:
        # Not Response.__init__: it would declare a Content-Length for an empty body.
        self.status_code = 200
        self.background = None
        self.raw_headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-store"),
            (b"x-accel-buffering", b"no"),
        ]
        self._feed = feed
        self._listener = listener
        self._since = since
        self._backlog = backlog

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        listener = self._listener
        gone = asyncio.ensure_future(_disconnected(receive, listener))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            sent = self._backlog[-1].seq if self._backlog else self._since
            await _send(send, f"retry: {SSE_RETRY_MS}\n\n".encode() + _frames(self._backlog))
            self._backlog = []
            while not gone.done():
                await listener.wait()
                if gone.done() or listener.overflowed:
                    break
                if listener.stale:
                    await self._feed.refresh(listener)
                events = [e for e in listener.take() if e.seq > sent]
                if events:
                    sent = events[-1].seq
                    await _send(send, _frames(events))
                else:
                    await _send(send, b": keep-alive\n\n")
        except OSError:
            pass
        finally:
            self._feed.leave(listener)
            gone.cancel()


async def _disconnected(receive: Receive, listener: Listener) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    listener.wake()


async def _send(send: Send, body: bytes) -> None:
    await send({"type": "http.response.body", "body": body, "more_body": True})


def _frames(events: list[ChangeEvent]) -> bytes:
    return b"".join(event.sse_frame for event in events)


def _limit(value: str | None) -> int:
    if value is None:
        return PAGE_DEFAULT
    limit = whole_number(value, PAGE_MAX)
    if limit is None or limit < 1:
        raise BadRequest(f"limit must be a whole number from 1 to {PAGE_MAX}")
    return limit
