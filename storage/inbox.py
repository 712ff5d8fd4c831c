"""The remote driver's callback app: it answers the challenge of the subscription the driver is
requesting, and turns the provider service's signed deliveries into Changes."""

from __future__ import annotations

import logging
from collections import OrderedDict

import orjson
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from common import challenge, webhook_signature
from common.bounded import read_body
from storage.provider import Change, ChangeCallback
from storage.signatures import MAX_SIGNED_BODY_BYTES
from storage.wire import error_response

logger = logging.getLogger("spacereg.storage.remote")

SEEN_EVENT_IDS = 4096


class Inbox:
    """ASGI app at the callback URL: echoes the challenge of a subscription being requested
    (404 otherwise), and turns signed deliveries into Changes, once per event id."""

    def __init__(self, name: str, emit: ChangeCallback) -> None:
        self.name = name
        self.emit = emit
        self.topic: str | None = None  # the service's name while a subscription is requested
        self.secrets: list[str] = []  # delivery secrets accepted, the newest first
        self._seen: OrderedDict[str, None] = OrderedDict()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        if request.method == "GET":
            response = self._challenge(request)
        elif request.method == "POST":
            response = await self._delivery(request)
        else:
            response = error_response(405, "methodNotAllowed", "GET or POST")
        await response(scope, receive, send)

    def _challenge(self, request: Request) -> Response:
        echoed = challenge.echo(request.query_params, self.topic)
        if echoed is None:
            return error_response(404, "notFound", "no such subscription is being requested")
        return PlainTextResponse(echoed)

    async def _delivery(self, request: Request) -> Response:
        body = await read_body(request.receive, MAX_SIGNED_BODY_BYTES)
        if body is None:
            return error_response(413, "tooLarge", "delivery too large")
        try:
            webhook_signature.verify(self.secrets, body, request.headers)
        except webhook_signature.BadSignature as exc:
            return error_response(401, "unauthenticated", f"bad delivery signature: {exc}")
        try:
            event = orjson.loads(body)
            event_id = str(event["id"])
            if event.get("type") != "space.changed":
                return Response(status_code=204)  # a kind of event this driver does not know
            paths = [str(p) for p in event["paths"]]
            if event.get("pathsTruncated"):
                paths.append("/")  # the paths cut off are somewhere in the space
            change = Change(
                str(event["spaceId"]),
                str(event["etag"]),
                int(event["used"]),
                tuple(paths),
                event_id=event_id,
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return error_response(400, "invalidRequest", "not a space.changed event")
        if event_id in self._seen:
            return Response(status_code=204)
        try:
            await self.emit(change)
        except Exception:
            logger.exception("provider %s: handling event %s failed", self.name, event_id)
            return error_response(503, "unavailable", "could not handle the event; retry")
        self._seen[event_id] = None
        if len(self._seen) > SEEN_EVENT_IDS:
            self._seen.popitem(last=False)
        return Response(status_code=204)
