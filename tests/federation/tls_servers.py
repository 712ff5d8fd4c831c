"""Real HTTPS servers on loopback (uvicorn in a thread, certificates from a trustme test CA)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from federation.instance import LocalInstance
from federation.keys import SigningKeys
from federation.wellknown import well_known_routes
from registry.runtime.demo_ca import CertFiles

TEST_NAMES = [
    "paris.test",
    "registry.paris.test",
    "zurich.test",
    "reg.zurich.test",
    "bare.test",
    "lyon.test",
    "registry.lyon.test",
    "public.test",
    "internal.test",
    "rebind.test",
    "mapped.test",
    "hang.test",
    "closed.test",
    "127.0.0.1",
    "127.0.0.2",
]


@dataclass
class Knobs:
    """Shared with the server thread: request counters and switches that make it misbehave."""

    hits: Counter[str] = field(default_factory=Counter)
    answered: Counter[str] = field(default_factory=Counter)  # requests whose answer was sent
    fail_paths: set[str] = field(default_factory=set)
    delay_s: dict[str, float] = field(default_factory=dict)
    issuer_override: str | None = None


class Directory:
    def __init__(self, users: set[str]) -> None:
        self.users = users
        self.calls = 0

    async def user_exists(self, username: str) -> bool:
        self.calls += 1
        return username in self.users


class CountingMiddleware:
    def __init__(self, app: ASGIApp, knobs: Knobs) -> None:
        self.app, self.knobs = app, knobs

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            self.knobs.hits[path] += 1
            if path in self.knobs.delay_s:
                await asyncio.sleep(self.knobs.delay_s[path])
            if path in self.knobs.fail_paths:
                await PlainTextResponse("down", status_code=503)(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            self.knobs.answered[path] += 1
            return
        await self.app(scope, receive, send)


def build_app(
    instance: LocalInstance, users: Directory, keys: SigningKeys, knobs: Knobs, name: str
) -> ASGIApp:
    """The federation routes plus a stand-in IdP and endpoints that misbehave on purpose."""
    issuer = instance.issuers[0]

    async def openid_configuration(request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": knobs.issuer_override or issuer,
                "jwks_uri": issuer + "/jwks",
                "authorization_endpoint": issuer + "/authorize",
                "token_endpoint": issuer + "/token",
            }
        )

    async def whoami(request: Request) -> Response:
        return JSONResponse({"server": name})

    async def ping(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def redirect(request: Request) -> Response:
        return RedirectResponse(request.query_params["to"], status_code=302)

    async def redirect_loop(request: Request) -> Response:
        left = int(request.query_params["n"])
        target = "/whoami" if left == 0 else f"/redirect-loop?n={left - 1}"
        return RedirectResponse(target, status_code=307)

    async def slow(request: Request) -> Response:
        await asyncio.sleep(float(request.query_params.get("s", "2")))
        return JSONResponse({"slow": True})

    async def big(request: Request) -> Response:
        return Response(b"[" + b"0," * 200_000 + b"0]", media_type="application/json")

    async def big_chunked(request: Request) -> Response:
        from starlette.responses import StreamingResponse

        async def chunks() -> Any:
            yield b"["
            for _ in range(100):
                yield b"0," * 5000
            yield b"0]"

        return StreamingResponse(chunks(), media_type="application/json")

    async def not_json(request: Request) -> Response:
        return PlainTextResponse("<html>hello</html>")

    routes = [
        *well_known_routes(instance, users, keys),
        Route("/idp/.well-known/openid-configuration", openid_configuration),
        Route("/whoami", whoami),
        Route("/ping", ping),
        Route("/redirect", redirect),
        Route("/redirect-loop", redirect_loop),
        Route("/slow", slow),
        Route("/big", big, methods=["GET", "POST"]),
        Route("/big-chunked", big_chunked, methods=["GET", "POST"]),
        Route("/not-json", not_json),
    ]
    return CountingMiddleware(Starlette(routes=routes), knobs)


@contextmanager
def serve_tls(app: ASGIApp, certs: CertFiles, sock: socket.socket) -> Iterator[int]:
    """Serve on an already bound socket (so two servers can share a port on 127.0.0.1/.2)."""
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="off",
        ssl_certfile=certs.cert_file,
        ssl_keyfile=certs.key_file,
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=10)
