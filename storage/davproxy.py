"""An ASGI reverse proxy from `<root_path>/<space-id>/<path>` to `<backend>/<space-id>/<path>`.

The host mounts it and authenticates the client; the proxy talks to the backend with the driver's
own credentials, streams bodies both ways, and rewrites URLs that name the backend (`Destination`,
`Location`, and hrefs in multistatus answers) so neither side learns the other's prefix."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote, unquote, urlsplit

import httpx2
from starlette.types import Message, Receive, Scope, Send

from storage.hrefs import rewritten
from storage.wire import error_response

# Meaningful for one connection only (RFC 9110 7.6.1), plus what must not cross the proxy: the
# client's credentials and cookies for the host, the backend's cookies for the driver, and what
# the host's own server writes (Date, Server).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
REQUEST_DROPPED = HOP_BY_HOP | {"host", "authorization", "cookie"}
RESPONSE_DROPPED = HOP_BY_HOP | {"set-cookie", "date", "server"}
UTF8 = ("utf-8", "surrogateescape")  # hrefs pass through byte for byte, whatever they hold


class DavProxy:
    def __init__(self, http: httpx2.AsyncClient, backend_url: str) -> None:
        self._http = http
        self._backend = backend_url if backend_url.endswith("/") else backend_url + "/"
        parts = urlsplit(self._backend)
        self._backend_prefixes = (self._backend, parts.path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        root = scope.get("root_path", "")
        path: str = scope["path"]
        relative = path[len(root) :] if path.startswith(root) else path
        space = _space_of(relative)
        if space is None:
            await error_response(404, "itemNotFound", "not a path in a space")(scope, receive, send)
            return
        headers = _forwarded(scope)
        destination = headers.get("destination")
        if destination is not None:
            target = self._destination(destination, root, space)
            if target is None:
                message = "Destination must be in the same space"
                await error_response(502, "invalidRequest", message)(scope, receive, send)
                return
            headers["destination"] = target
        url = self._backend + quote(relative.lstrip("/"))
        if scope.get("query_string"):
            url += "?" + scope["query_string"].decode("latin-1")
        has_body = "content-length" in headers or _chunked(scope)
        request = self._http.build_request(
            scope["method"], url, headers=headers, content=_body(receive) if has_body else None
        )
        try:
            response = await self._http.send(request, stream=True)
        except httpx2.TransportError as exc:
            message = f"the WebDAV server did not answer: {type(exc).__name__}"
            await error_response(502, "providerUnavailable", message)(scope, receive, send)
            return
        try:
            if response.status_code in (401, 407):
                message = "the WebDAV server refused the provider's credentials"
                await error_response(502, "providerUnavailable", message)(scope, receive, send)
            else:
                await self._relay(scope, response, send, quote(root) + "/")
        finally:
            await response.aclose()

    async def _relay(self, scope: Scope, response: httpx2.Response, send: Send, mount: str) -> None:
        # Multistatus and lock answers carry hrefs; other bodies (a GET of an XML file) are data.
        rewrite = response.status_code == 207 or scope["method"] == "LOCK"
        dropped = RESPONSE_DROPPED | ({"content-length", "content-encoding"} if rewrite else set())
        headers = []
        for key, value in response.headers.multi_items():
            if key.lower() in dropped:
                continue
            if key.lower() in ("location", "content-location"):
                value = self._to_client(value, mount)
            headers.append((key.lower().encode("latin-1"), value.encode("latin-1")))
        start = {"type": "http.response.start", "status": response.status_code, "headers": headers}
        await send(start)
        if rewrite:
            body = rewritten(response.aiter_bytes(), lambda href: self._href(href, mount))
        else:
            body = response.aiter_raw()
        async for chunk in body:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _href(self, href: bytes, mount: str) -> bytes:
        return self._to_client(href.decode(*UTF8), mount).encode(*UTF8)

    def _to_client(self, url: str, mount: str) -> str:
        for prefix in self._backend_prefixes:
            if url.startswith(prefix):
                return mount + url[len(prefix) :]
        return url

    def _destination(self, destination: str, root: str, space: str) -> str | None:
        """The backend URL for a client's Destination, if it names a path in the same space."""
        path = unquote(urlsplit(destination).path)
        relative = path[len(root) :] if path.startswith(root + "/") else None
        if relative is None or _space_of(relative) != space:
            return None
        return self._backend + quote(relative.lstrip("/"))


def _space_of(relative: str) -> str | None:
    """The first segment of `/<space-id>/...`, refusing dot segments that would leave it."""
    segments = relative.lstrip("/").split("/")
    if not segments[0] or any(s in (".", "..") for s in segments):
        return None
    return segments[0]


def _forwarded(scope: Scope) -> dict[str, str]:
    raw = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
    listed = {name.strip().lower() for k, v in raw if k == "connection" for name in v.split(",")}
    headers: dict[str, str] = {}
    for key, value in raw:
        if key not in REQUEST_DROPPED and key not in listed:
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


def _chunked(scope: Scope) -> bool:
    return any(k == b"transfer-encoding" for k, _ in scope["headers"])


async def _body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message: Message = await receive()
        if message["type"] != "http.request":
            return
        if message.get("body"):
            yield message["body"]
        if not message.get("more_body"):
            return
