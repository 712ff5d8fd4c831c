"""Servers for the signature tests, real on loopback: a receiver that verifies every request
with `RequestVerifier` (its routes under a `Mount`), a sender that publishes its JWKS and a
Nextcloud-like OCM discovery, and a TLS proxy that strips a path prefix."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from federation.clock import ManualClock
from federation.config import DiscoveryConfig
from federation.errors import SignatureError, SignatureKeysUnavailable, SignatureMissing
from federation.incoming import IncomingRequest
from federation.keys import SigningKeys
from federation.metadata import JWKS_PATH
from federation.peer_keys import JwksKeys, KeyResolver
from federation.replay import MemoryReplayCache
from federation.safe_http import SafeHttpClient
from federation.verification import RequestVerifier

LEGACY_KEY_ID = "https://nc.test/ocm#signature"


@dataclass
class ShiftedClock:
    """The system's wall clock, moved by `offset`."""

    offset: timedelta = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


@dataclass
class Receiver:
    base_url: str  # what senders address; set once the server listens
    jwks_url: str
    config: DiscoveryConfig
    clock: ShiftedClock = field(default_factory=ShiftedClock)
    key_clock: ManualClock = field(default_factory=ManualClock)
    replay: MemoryReplayCache = field(default_factory=MemoryReplayCache)
    legacy: KeyResolver | None = None
    keys: JwksKeys | None = None  # built in the server's event loop


def refused(response: httpx2.Response, code: str, status: int = 401) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    return str(error["message"])


def error(status: int, exc: SignatureError) -> Response:
    return JSONResponse({"error": {"code": exc.code, "message": str(exc)}}, status_code=status)


def receiver_app(receiver: Receiver) -> Starlette:
    verifier = RequestVerifier(receiver.replay, receiver.clock)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        http = SafeHttpClient(receiver.config)
        receiver.keys = JwksKeys(receiver.jwks_url, http, peer="sender", clock=receiver.key_clock)
        try:
            yield
        finally:
            await http.aclose()

    async def check(request: Request, *, required: bool = True, legacy: bool = False) -> Response:
        body = await request.body()
        incoming = IncomingRequest.from_scope(request.scope, receiver.base_url, body)
        assert receiver.keys is not None
        try:
            signed = await verifier.verify(
                incoming, receiver.keys, legacy_keys=receiver.legacy if legacy else None
            )
        except SignatureMissing as exc:
            if required:
                return error(401, exc)
            return JSONResponse({"signed": None, "url": incoming.url})
        except SignatureKeysUnavailable as exc:
            return error(503, exc)
        except SignatureError as exc:
            return error(401, exc)
        answer = {
            "scheme": signed.scheme,
            "keyid": signed.keyid,
            "source": signed.source,
            "peer": signed.peer,
            "algorithm": signed.algorithm,
        }
        return JSONResponse({"signed": answer, "url": incoming.url})

    async def shares(request: Request) -> Response:
        return await check(request)

    async def notifications(request: Request) -> Response:
        return await check(request)

    async def open_inbox(request: Request) -> Response:
        return await check(request, required=False)

    async def legacy(request: Request) -> Response:
        return await check(request, legacy=True)

    methods = ["GET", "POST"]
    ocm = [
        Route("/shares", shares, methods=methods),
        Route("/notifications", notifications, methods=methods),
        Route("/open", open_inbox, methods=methods),
        Route("/legacy", legacy, methods=methods),
    ]
    return Starlette(routes=[Mount("/ocm", routes=ocm)], lifespan=lifespan)


@dataclass
class Sender:
    keys: SigningKeys
    legacy_pem: str = ""
    hits: Counter[str] = field(default_factory=Counter)
    down: bool = False  # the JWKS answers 503


def sender_app(sender: Sender) -> Starlette:
    """What a peer publishes: its JWKS, and an OCM discovery with a legacy `publicKey`."""

    async def jwks(request: Request) -> Response:
        sender.hits["jwks"] += 1
        if sender.down:
            return Response("down", status_code=503)
        return JSONResponse(sender.keys.jwks(), headers={"Cache-Control": "max-age=300"})

    async def ocm_provider(request: Request) -> Response:
        document: dict[str, Any] = {
            "enabled": True,
            "apiVersion": "1.1.0",
            "endPoint": "https://nc.test/ocm",
            "resourceTypes": [{"name": "file", "shareTypes": ["user"], "protocols": {}}],
            "capabilities": ["/invite-accepted"],
            "publicKey": {"keyId": LEGACY_KEY_ID, "publicKeyPem": sender.legacy_pem},
        }
        return JSONResponse(document)

    return Starlette(routes=[Route(JWKS_PATH, jwks), Route("/ocm-provider", ocm_provider)])


def stripping_proxy(prefix: str, backend: str) -> Starlette:
    """Forwards `prefix/...` to `backend/...`, as a TLS-terminating reverse proxy does: the
    backend sees another scheme, host and port, and the path without the prefix."""
    clients: list[httpx2.AsyncClient] = []

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with httpx2.AsyncClient(trust_env=False) as client:
            clients.append(client)
            yield

    async def forward(request: Request) -> Response:
        raw = request.scope["raw_path"].decode("latin-1")[len(prefix) :]
        query = request.scope["query_string"].decode("latin-1")
        headers = [
            (name, value)
            for name, value in request.headers.items()
            if name not in ("host", "content-length")
        ]
        upstream = await clients[0].request(
            request.method,
            backend + raw + (f"?{query}" if query else ""),
            headers=headers,
            content=await request.body(),
        )
        return Response(
            upstream.content,
            status_code=upstream.status_code,
            media_type=upstream.headers.get("content-type"),
        )

    route = Route(prefix + "/{rest:path}", forward, methods=["GET", "POST"])
    return Starlette(routes=[route], lifespan=lifespan)
