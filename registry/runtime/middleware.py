"""Pure ASGI middleware: a request id on every request, and the server's own time for it."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from registry.runtime.logs import request_id as current_request_id

_SAFE_ID = re.compile(rb"^[A-Za-z0-9._-]{1,64}$")

# (scope after routing, status, seconds until the response started)
Observer = Callable[[Scope, int, float], None]


def _ignore(scope: Scope, status: int, seconds: float) -> None:
    pass


class RequestContext:
    """Reuses a sane incoming X-Request-Id or makes one; adds `Server-Timing: app;dur=<ms>`
    (time until the response starts), which the benchmarks read, and tells `observe` the same
    time (the metrics' latency histogram). Log events of the request carry its id."""

    def __init__(self, app: ASGIApp, observe: Observer = _ignore) -> None:
        self.app = app
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        incoming = dict(scope["headers"]).get(b"x-request-id", b"")
        request_id = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex.encode()
        scope["spacereg.request_id"] = request_id.decode()
        logged_as = current_request_id.set(scope["spacereg.request_id"])

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                elapsed = time.perf_counter() - started
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id),
                    (b"server-timing", f"app;dur={elapsed * 1000:.3f}".encode()),
                ]
                self.observe(scope, message["status"], elapsed)
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            current_request_id.reset(logged_as)
