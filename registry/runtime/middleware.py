"""Pure ASGI middleware: a request id on every request, and the server's own time for it."""

from __future__ import annotations

import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_SAFE_ID = re.compile(rb"^[A-Za-z0-9._-]{1,64}$")


class RequestContext:
    """Reuses a sane incoming X-Request-Id or makes one; adds `Server-Timing: app;dur=<ms>`
    (time until the response starts), which the benchmarks read."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        incoming = dict(scope["headers"]).get(b"x-request-id", b"")
        request_id = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex.encode()
        scope["spacereg.request_id"] = request_id.decode()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                elapsed_ms = (time.perf_counter() - started) * 1000
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id),
                    (b"server-timing", f"app;dur={elapsed_ms:.3f}".encode()),
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)
