"""HMAC signatures between a registry and a provider service.

Requests from the registry carry `Authorization: Spacereg-HMAC t=<unix>, n=<nonce>, sig=<hex>`,
an HMAC-SHA256 with the shared secret over the method, the path with its query, the timestamp,
the nonce and the SHA-256 of the body. WebDAV bodies are streamed, so requests below
`/dav/` sign the literal `UNSIGNED-PAYLOAD` instead of the body's digest (as S3 does).

(Deliveries to a subscriber are signed the Standard Webhooks way: `common/webhook_signature.py`.)
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Generator

import httpx2
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.bounded import read_body
from storage.wire import error_response

SCHEME = "Spacereg-HMAC"
MAX_SKEW_SECONDS = 300
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMED_PREFIX = b"/dav/"  # paths whose bodies are not part of the signature
MAX_SIGNED_BODY_BYTES = 1024 * 1024
MIN_SECRET_LENGTH = 32

_HEADER = re.compile(
    rf"^{SCHEME} t=(\d{{1,12}}), n=([A-Za-z0-9_-]{{16,64}}), sig=([0-9a-f]{{64}})$"
)


class SignatureError(Exception):
    """A request or delivery is unsigned, stale, replayed or signed with another secret."""


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def request_signature(
    secret: str, method: str, target: str, timestamp: int, nonce: str, digest: str
) -> str:
    text = f"spacereg-hmac-v1\n{method.upper()}\n{target}\n{timestamp}\n{nonce}\n{digest}"
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


def authorization(
    secret: str, method: str, target: str, digest: str, now: float | None = None
) -> str:
    """The Authorization header value for one request."""
    timestamp = int(time.time() if now is None else now)
    nonce = secrets.token_urlsafe(18)
    sig = request_signature(secret, method, target, timestamp, nonce, digest)
    return f"{SCHEME} t={timestamp}, n={nonce}, sig={sig}"


def sign(request: httpx2.Request, secret: str, *, unsigned_payload: bool = False) -> None:
    """Sign an httpx2 request in place; its content must be in memory unless `unsigned_payload`."""
    digest = UNSIGNED_PAYLOAD if unsigned_payload else body_digest(request.content)
    target = request.url.raw_path.decode("ascii")
    request.headers["Authorization"] = authorization(secret, request.method, target, digest)


class HmacAuth(httpx2.Auth):
    """Signs every request of an httpx2 client with the shared secret. With `unsigned_payload`
    the body is not read first (it may be a stream) and `UNSIGNED-PAYLOAD` is signed instead."""

    def __init__(self, secret: str, *, unsigned_payload: bool = False) -> None:
        self.secret = secret
        self.unsigned_payload = unsigned_payload
        self.requires_request_body = not unsigned_payload

    def auth_flow(
        self, request: httpx2.Request
    ) -> Generator[httpx2.Request, httpx2.Response, None]:
        sign(request, self.secret, unsigned_payload=self.unsigned_payload)
        yield request


class ReplayGuard:
    """Remembers the nonces of recent valid requests so that none is accepted twice."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._max = max_entries

    def check(self, nonce: str, now: float) -> None:
        while self._seen and (
            len(self._seen) >= self._max or next(iter(self._seen.values())) < now
        ):
            self._seen.popitem(last=False)
        if nonce in self._seen:
            raise SignatureError("request replayed")
        self._seen[nonce] = now + 2 * MAX_SKEW_SECONDS


def verify(
    secret: str,
    method: str,
    target: str,
    digest: str,
    header: str | None,
    guard: ReplayGuard,
    now: float | None = None,
) -> None:
    if not header:
        raise SignatureError(f"missing Authorization: {SCHEME}")
    match = _HEADER.match(header.strip())
    if match is None:
        raise SignatureError(f"malformed Authorization header (expected {SCHEME} t=, n=, sig=)")
    timestamp, nonce, sig = int(match[1]), match[2], match[3]
    now = time.time() if now is None else now
    if abs(now - timestamp) > MAX_SKEW_SECONDS:
        raise SignatureError("stale timestamp (clocks more than 300 s apart?)")
    expected = request_signature(secret, method, target, timestamp, nonce, digest)
    if not hmac.compare_digest(expected, sig):
        raise SignatureError("bad signature")
    guard.check(nonce, now)


class RequireSignature:
    """ASGI middleware: every HTTP request but `open_paths` must be signed with `secret`."""

    def __init__(
        self,
        app: ASGIApp,
        secret: str,
        open_paths: frozenset[str] = frozenset(),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self.secret = secret
        self.open_paths = open_paths
        self.clock = clock
        self.guard = ReplayGuard()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths:
            await self.app(scope, receive, send)
            return
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        target = raw_path + (b"?" + scope["query_string"] if scope["query_string"] else b"")
        header = _header(scope, b"authorization")
        if header is None or not _HEADER.match(header.strip()):  # refused before reading a body
            message = f"missing or malformed Authorization (expected {SCHEME} t=, n=, sig=)"
            await _refuse(message)(scope, receive, send)
            return
        if raw_path.startswith(STREAMED_PREFIX):
            digest, replay = UNSIGNED_PAYLOAD, receive
        else:
            body = await read_body(receive, MAX_SIGNED_BODY_BYTES)
            if body is None:
                await error_response(413, "tooLarge", "request body too large")(
                    scope, receive, send
                )
                return
            digest, replay = body_digest(body), replayed(body, receive)
        try:
            verify(
                self.secret,
                scope["method"],
                target.decode("latin-1"),
                digest,
                header,
                self.guard,
                self.clock(),
            )
        except SignatureError as exc:
            await _refuse(str(exc))(scope, receive, send)
            return
        await self.app(scope, replay, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def replayed(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives `body`, already read, then whatever `receive` gives next."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _refuse(message: str) -> Response:
    return error_response(401, "unauthenticated", message, {"www-authenticate": SCHEME})
