"""An unexpected exception answered with a whole 500, after which the connection stays usable.

Starlette's outermost `ServerErrorMiddleware` answers an exception with its 500 too, but then
raises it again for the server to log; uvicorn, seeing an exception after a complete response,
closes the connection without having said `Connection: close`, so a keep-alive client's next
request on it fails. Placed inside it (in the app's `middleware` list), this middleware logs the
exception once, answers with `handler`'s response, and ends the request normally.

Once a response has started, a 500 can no longer be sent: the exception goes on, and the server
closes the connection, which cuts the body short where the client can tell.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("spacereg.errors")

Handler = Callable[[Request, Exception], Awaitable[Response]]


class ServerErrors:
    def __init__(self, app: ASGIApp, handler: Handler) -> None:
        self.app = app
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as exc:
            if started:
                raise
            request = Request(scope)
            logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
            response = await self.handler(request, exc)
            await response(scope, receive, send)
