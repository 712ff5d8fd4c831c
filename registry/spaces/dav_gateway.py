"""`/dav/spaces/<space-id>/<path>`: WebDAV of every space, behind our authentication.

The space's WebDAV back end serves the files itself (chosen per space by `DavBackends`; today
the WebDAV app of the provider holding it); this gateway decides who may do what first: viewers
read, editors and managers write, anyone else gets 404 as if the space did not exist. A path
no space can hold is refused first (400, 414: `storage.dav_paths`). Then `webdav.extensions`
takes the request (locks, dead properties, chunked uploads: what the registry keeps for every
back end) and forwards what the back end serves; quota is enforced on each PUT it forwards
(507). The back end reports a successful write itself, so the change reaches subscribers
without a scan.
"""

from __future__ import annotations

import tempfile
from functools import partial
from typing import IO
from urllib.parse import unquote, urlsplit

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from registry.access import roles
from registry.access.principal import Authenticate
from registry.core.errors import (
    Forbidden,
    InsufficientStorage,
    NotFound,
    NotSupported,
    Unavailable,
)
from registry.core.http import whole_number
from registry.core.routing import allow_header
from registry.spaces.dav_backends import DavBackends, SpaceFiles, SpaceSizes
from registry.spaces.service import SpaceService
from registry.spaces.webdav.asgi import with_header
from registry.spaces.webdav.extensions import DavExtensions
from registry.spaces.webdav.paths import check_paths
from registry.spaces.webdav.quota import over_quota, room
from registry.spaces.webdav.target import DavTarget
from storage.oc_props import PERMISSIONS_HEADER, QUOTA_HEADER

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PROPFIND"})
WRITE_METHODS = frozenset({"PUT", "MKCOL", "DELETE", "MOVE", "COPY", "PROPPATCH", "LOCK", "UNLOCK"})
DAV_METHODS = READ_METHODS | WRITE_METHODS
ALLOW_ALL, ALLOW_READS = allow_header(DAV_METHODS), allow_header(READ_METHODS)
SPOOL_IN_MEMORY_BYTES = 1024 * 1024
# What a role may do, as the letters of ownCloud's `oc:permissions` (delete, rename, move,
# write files, create files and folders); viewers only read. Sharing single items (R) is not
# built yet.
WRITER_PERMISSIONS = "DNVWCK"
_TOLD = (PERMISSIONS_HEADER.lower().encode(), QUOTA_HEADER.lower().encode())


class DavGateway:
    def __init__(
        self,
        spaces: SpaceService,
        backends: DavBackends,
        authenticate: Authenticate,
        extensions: DavExtensions,
    ) -> None:
        self._spaces = spaces
        self._backends = backends
        self._authenticate = authenticate
        self._extensions = extensions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        method = request.method
        if method not in DAV_METHODS:
            raise HTTPException(
                405, f"WebDAV method {method} is not supported", {"Allow": ALLOW_ALL}
            )
        check_paths(scope)
        space_id, path = _split(_relative(scope))
        principal = await self._authenticate(request)
        view = await self._spaces.get_visible(principal, space_id)
        role = self._spaces.role(principal, view)
        if role is None:
            raise NotFound(f"no space {space_id}")
        space = view.space
        if space.status == "disabled":
            raise Forbidden("the space is disabled; restore it to use its files")
        if space.availability != "available" and space.remote_url is None:  # a peer's: try
            raise Unavailable("the storage holding this space cannot be reached; try again later")
        if method in WRITE_METHODS:
            if not roles.at_least(role, roles.EDITOR):
                raise Forbidden("viewers may not change files in this space")
            if method in {"MOVE", "COPY"}:
                _same_space(request, scope, space_id)
        files = self._backends.for_space(space)
        if files is None:
            raise NotSupported("the storage holding this space offers no WebDAV")
        writes = roles.at_least(role, roles.EDITOR)
        if method == "OPTIONS":  # what the caller may do in the space, not on one resource
            send = with_header(send, b"allow", (ALLOW_ALL if writes else ALLOW_READS).encode())
        total = space.quota_total
        if space.parent_id is not None and method in WRITE_METHODS:  # a share space
            total = await self._spaces.quota_of(space.parent_id)  # its holding space's quota
        scope = _telling(scope, WRITER_PERMISSIONS if writes else "", total)
        request = Request(scope, receive)
        target = DavTarget.of(request, principal, space_id, path, files, total)
        forward = partial(_forward, files, total)
        await self._extensions.serve(target, forward, send)


async def _forward(
    files: SpaceFiles, total: int | None, scope: Scope, receive: Receive, send: Send
) -> None:
    """Hand the request to the space's back end, a PUT only within the space's quota."""
    spool = None
    if scope["method"] == "PUT":
        space_id, path = _split(_relative(scope))
        spool, scope, receive = await _within_quota(
            Request(scope, receive), files.sizes, space_id, path, total
        )
    try:
        await files.app(scope, receive, send)  # the back end reports its own writes
    finally:
        if spool is not None:
            spool.close()


def _telling(scope: Scope, permissions: str, quota: int | None) -> Scope:
    """The request, telling the back end what the caller may do and the space's quota, in
    headers no client can set (theirs are dropped)."""
    headers = [(k, v) for k, v in scope["headers"] if k.lower() not in _TOLD]
    headers.append((_TOLD[0], permissions.encode()))
    headers.append((_TOLD[1], str(quota or 0).encode()))
    return {**scope, "headers": headers}


def _relative(scope: Scope) -> str:
    return str(scope["path"][len(scope.get("root_path", "")) :])


def _split(relative: str) -> tuple[str, str]:
    space_id, _, rest = relative.lstrip("/").partition("/")
    if not space_id:
        raise NotFound("name a space: /dav/spaces/<space-id>/<path>")
    return space_id, "/" + rest


def _same_space(request: Request, scope: Scope, space_id: str) -> None:
    """A MOVE or COPY must stay inside the space the caller's role was checked on."""
    target = unquote(urlsplit(request.headers.get("destination", "")).path)
    if not target.startswith(f"{scope.get('root_path', '')}/{space_id}/"):
        raise Forbidden("MOVE and COPY work only inside one space")


async def _within_quota(
    request: Request,
    sizes: SpaceSizes,
    space_id: str,
    path: str,
    total: int | None,
) -> tuple[IO[bytes] | None, Scope, Receive]:
    """Refuse a PUT that would take the space over its quota. A body without Content-Length
    is spooled first (up to what is left), then replayed with its length."""
    allowed = await room(sizes, space_id, path, total)
    if allowed is None:
        return None, request.scope, request.receive
    declared = whole_number(request.headers.get("content-length", ""))
    if declared is not None:
        if declared > allowed:
            raise InsufficientStorage(over_quota(declared, allowed))
        return None, request.scope, request.receive
    # Closed by the caller once the provider has read it.
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES)  # noqa: SIM115
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > allowed:
            spool.close()
            raise InsufficientStorage(over_quota(size, allowed))
        spool.write(chunk)
    spool.seek(0)
    headers = [(k, v) for k, v in request.scope["headers"] if k != b"transfer-encoding"]
    scope = {**request.scope, "headers": [*headers, (b"content-length", str(size).encode())]}
    return spool, scope, _replay(spool, request.receive)


def _replay(spool: IO[bytes], then: Receive) -> Receive:
    """The spooled body, then whatever the client sends next (its disconnect)."""
    done = False

    async def receive() -> Message:
        nonlocal done
        if done:
            return await then()
        chunk = spool.read(64 * 1024)
        done = not chunk
        return {"type": "http.request", "body": chunk, "more_body": not done}

    return receive
