"""The classic WebDAV roots, `/remote.php/webdav/` and `/remote.php/dav/files/<user>/`, mapped
onto the caller's personal space: the request goes on to the WebDAV gateway as if for
`<root>/<space-id>/<path>`, and the answer's hrefs lose the space id again, so the client sees
the prefix it asked for."""

from __future__ import annotations

from urllib.parse import quote, unquote, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from registry.access.principal import Authenticate
from registry.core.errors import NotFound
from registry.spaces.service import SpaceService
from storage.hrefs import HrefRewriter

WEBDAV_ROOT = "/remote.php/webdav"
FILES_ROOT = "/remote.php/dav/files"
UPLOADS_ROOT = "/remote.php/dav/uploads"


class ClassicRoot:
    """Mounted at `WEBDAV_ROOT`, or at `FILES_ROOT` with `per_user` (the next segment names the
    user, who must be the caller)."""

    def __init__(
        self, spaces: SpaceService, gateway: ASGIApp, authenticate: Authenticate, per_user: bool
    ) -> None:
        self._spaces = spaces
        self._gateway = gateway
        self._authenticate = authenticate
        self._per_user = per_user

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        principal = await self._authenticate(Request(scope))
        prefix: str = scope.get("root_path", "")
        rest = scope["path"][len(prefix) :]
        if self._per_user:
            user, _, below = rest.lstrip("/").partition("/")
            if user != principal.username:
                raise NotFound(f"no files of {user!r} here; use {FILES_ROOT}/<your user name>/")
            prefix, rest = f"{prefix}/{user}", "/" + below
        space_id = await self._spaces.personal_space_id(principal)
        path = f"{prefix}/{space_id}{rest or '/'}"
        depth, inside = prefix.count("/"), f"{prefix}/{space_id}"
        headers = [
            (key, _destination(value, prefix, depth, inside) if key == b"destination" else value)
            for key, value in scope["headers"]
        ]
        inner = {
            **scope,
            "root_path": prefix,
            "path": path,
            "raw_path": _raw_path(scope, depth, inside),
            "headers": headers,
        }
        await self._gateway(inner, receive, _hrefs_without_space(send, depth, space_id, scope))


def _raw_path(scope: Scope, depth: int, inside: str) -> bytes:
    """The path as the client sent it, but for the prefix (its first `depth` segments), which
    becomes `inside`: the gateway checks the bytes the client sent, which decoding may have
    changed (a byte that is not UTF-8 becomes U+FFFD in `path`)."""
    raw: bytes = scope.get("raw_path") or quote(scope["path"]).encode()
    pieces = raw.partition(b"?")[0].split(b"/", depth + 1)
    rest = pieces[-1] if len(pieces) == depth + 2 else b""
    return quote(inside).encode() + b"/" + rest


def _destination(value: bytes, prefix: str, depth: int, inside: str) -> bytes:
    """A Destination in the classic root, made the same path in the space (its bytes after
    the prefix kept as sent, for the gateway to check)."""
    url = urlsplit(value.decode("latin-1"))
    pieces = url.path.split("/", depth + 1)
    if len(pieces) != depth + 2 or unquote("/".join(pieces[:-1])) != prefix:
        return value  # the gateway refuses it as outside the space
    path = quote(inside) + "/" + pieces[-1]
    return urlunsplit((url.scheme, url.netloc, path, "", "")).encode("latin-1")


def _hrefs_without_space(send: Send, depth: int, space_id: str, scope: Scope) -> Send:
    """`send` with the space id taken out of the hrefs of a multistatus or lock answer: the
    segment after the prefix's `depth` segments (back ends quote the prefix differently, the
    id never needs quoting)."""
    rewriter: HrefRewriter | None = None
    segment = space_id.encode()

    def href(text: bytes) -> bytes:
        pieces = text.split(b"/", depth + 1)
        if len(pieces) != depth + 2:
            return text
        first, _, rest = pieces[-1].partition(b"/")
        if first != segment:
            return text
        return b"/".join([*pieces[:-1], rest])

    async def rewriting(message: Message) -> None:
        nonlocal rewriter
        if message["type"] == "http.response.start":
            if message["status"] == 207 or scope["method"] == "LOCK":
                rewriter = HrefRewriter(href)
                headers = [(k, v) for k, v in message["headers"] if k.lower() != b"content-length"]
                message = {**message, "headers": headers}
        elif message["type"] == "http.response.body" and rewriter is not None:
            more = message.get("more_body", False)
            body = rewriter.feed(message.get("body", b""))
            message = {**message, "body": body + (b"" if more else rewriter.end())}
        await send(message)

    return rewriting
