"""A space's files for the pages, through the same WebDAV gateway the sync clients use (run in
process, as the logged-in user): the gateway holds the rules (roles, the space's state, quota,
which paths a space may hold), the pages none of their own."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote, urlsplit

from defusedxml import DefusedXmlException, ElementTree
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from registry.access.principal import Principal
from registry.core.errors import (
    ApiError,
    BadRequest,
    Conflict,
    NotFound,
    PayloadTooLarge,
    Unavailable,
)
from registry.spaces.dav_backends import DAV_MOUNT, DavBackends
from registry.spaces.dav_gateway import DavGateway
from registry.spaces.service import SpaceService
from registry.spaces.webdav.extensions import DavExtensions
from registry.web.render import error_page

_PRINCIPAL = "spacereg.web_principal"
_DAV = "{DAV:}"
LISTING_MAX_BYTES = 16 * 1024 * 1024
_NOT_PASSED = {b"host", b"cookie", b"authorization", b"x-csrf-token"}


@dataclass(frozen=True)
class Entry:
    name: str
    path: str  # from the space's root, starting with "/"
    folder: bool
    size: int | None
    modified: datetime | None


async def _logged_in(connection: HTTPConnection) -> Principal:
    principal = connection.scope[_PRINCIPAL]
    assert isinstance(principal, Principal)
    return principal


def clean_path(path: str) -> str:
    """`path` from a form or a URL as a path in the space: absolute, no `..` out of it."""
    if "\x00" in path:
        raise BadRequest("a path may not hold NUL")
    return posixpath.normpath("/" + path.strip("/")).replace("//", "/")


def child(folder: str, name: str) -> str:
    name = name.strip()
    if not name or name in {".", ".."} or "/" in name:
        raise BadRequest("a name is not empty and holds no '/'")
    return clean_path(f"{folder}/{name}")


class Files:
    def __init__(
        self, spaces: SpaceService, backends: DavBackends, extensions: DavExtensions
    ) -> None:
        self._gateway = DavGateway(spaces, backends, _logged_in, extensions)

    async def listing(self, principal: Principal, space_id: str, folder: str) -> list[Entry]:
        status, body = await self._call(principal, "PROPFIND", space_id, folder, {"depth": "1"})
        return listing(status, body, space_id, folder)

    async def make_folder(self, principal: Principal, space_id: str, path: str) -> None:
        status, _ = await self._call(principal, "MKCOL", space_id, path)
        _expect(status, path)

    async def move(self, principal: Principal, space_id: str, path: str, target: str) -> None:
        headers = {"destination": _dav_path(space_id, target), "overwrite": "F"}
        status, _ = await self._call(principal, "MOVE", space_id, path, headers)
        _expect(status, target)

    async def delete(self, principal: Principal, space_id: str, path: str) -> None:
        status, _ = await self._call(principal, "DELETE", space_id, path)
        _expect(status, path)

    def relay(self, request: Request, principal: Principal, space_id: str, path: str) -> Response:
        """The request (a download's GET, an upload's PUT) and its answer streamed through
        the gateway."""
        scope = _scope(principal, request.method, space_id, path, request.headers.raw)
        return _Relay(self._gateway, scope, request.receive)

    async def _call(
        self,
        principal: Principal,
        method: str,
        space_id: str,
        path: str,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        raw = [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
        scope = _scope(principal, method, space_id, path, raw)
        status, chunks = 0, bytearray()

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and len(chunks) < LISTING_MAX_BYTES:
                chunks.extend(message.get("body", b""))

        await self._gateway(scope, receive, send)
        return status, bytes(chunks)


class _Relay(Response):
    """Runs the gateway as this response; its refusals become error pages."""

    def __init__(self, gateway: DavGateway, scope: Scope, receive: Receive) -> None:
        super().__init__()
        self._gateway, self._scope, self._receive = gateway, scope, receive

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._gateway(self._scope, self._receive, send)
        except ApiError as exc:
            await error_page(Request(scope, receive), exc.status, exc.message)(scope, receive, send)


def _dav_path(space_id: str, path: str) -> str:
    return f"{DAV_MOUNT}/{space_id}{quote(path)}"


def _scope(
    principal: Principal, method: str, space_id: str, path: str, headers: list[tuple[bytes, bytes]]
) -> Scope:
    raw = _dav_path(space_id, path)
    return {
        "type": "http",
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "server": ("127.0.0.1", 80),
        "path": unquote(raw),
        "raw_path": raw.encode(),
        "root_path": DAV_MOUNT,
        "query_string": b"",
        "headers": [
            (b"host", b"localhost"),  # WsgiDAV wants one; ours are left out
            *((k, v) for k, v in headers if k.lower() not in _NOT_PASSED),
        ],
        _PRINCIPAL: principal,
    }


def _expect(status: int, path: str) -> None:
    if status in {405, 409, 412}:
        raise Conflict(f"{path} already exists, or its folder does not")
    if status == 404:
        raise NotFound(f"{path} is not there")
    if not 200 <= status < 300:
        raise BadRequest(f"the storage refused this ({status})")


def listing(status: int, body: bytes, space_id: str, folder: str) -> list[Entry]:
    """The entries of `folder` from the gateway's answer to PROPFIND (Depth 1), folders
    first; an answer that is not a readable listing is the error a page shows."""
    if status != 207:
        raise NotFound(f"no folder {folder} in this space")
    if len(body) >= LISTING_MAX_BYTES:
        raise PayloadTooLarge("this folder holds too many entries to show on a page")
    try:
        entries = _entries(body, space_id, folder)
    except (ElementTree.ParseError, DefusedXmlException) as exc:
        raise Unavailable("the storage answered with a listing that cannot be read") from exc
    return sorted(entries, key=lambda e: (not e.folder, e.name))


def _entries(body: bytes, space_id: str, folder: str) -> list[Entry]:
    prefix = f"{DAV_MOUNT}/{space_id}"
    found = []
    for response in ElementTree.fromstring(body).iter(f"{_DAV}response"):
        href = unquote(urlsplit(response.findtext(f"{_DAV}href", "")).path)
        path = clean_path(href.removeprefix(prefix))
        if path == folder:
            continue
        prop = response.find(f"{_DAV}propstat/{_DAV}prop")
        is_folder = (
            prop is not None and prop.find(f"{_DAV}resourcetype/{_DAV}collection") is not None
        )
        size = prop.findtext(f"{_DAV}getcontentlength") if prop is not None else None
        modified = prop.findtext(f"{_DAV}getlastmodified") if prop is not None else None
        found.append(
            Entry(
                posixpath.basename(path),
                path,
                is_folder,
                int(size) if size and size.isdigit() and not is_folder else None,
                _moment(modified),
            )
        )
    return found


def _moment(text: str | None) -> datetime | None:
    try:
        return parsedate_to_datetime(text) if text else None
    except (TypeError, ValueError):  # a back end's odd date is shown as none
        return None
