"""`/dav/spaces/<space-id>/<path>`: WebDAV of every space, behind our authentication.

The space's WebDAV back end serves the files itself (chosen per space by `DavBackends`; today
the WebDAV app of the provider holding it); this gateway decides who may do what first: viewers
read, editors and managers write, anyone else gets 404 as if the space did not exist. A path
no space can hold is refused first (400, 414: `storage.dav_paths`). Quota is enforced on PUT
(507). The back end reports a successful write itself, so the change reaches
subscribers without a scan.
"""

from __future__ import annotations

import tempfile
from typing import IO
from urllib.parse import unquote, urlsplit

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from registry.access import roles
from registry.access.principal import Authenticate
from registry.core.errors import (
    BadRequest,
    Forbidden,
    InsufficientStorage,
    NotFound,
    NotSupported,
    Unavailable,
    UriTooLong,
)
from registry.core.http import whole_number
from registry.core.routing import allow_header
from registry.spaces.dav_backends import DavBackends, SpaceSizes
from registry.spaces.service import SpaceService
from storage import PathNotFound, StorageError
from storage.dav_paths import BadPath, PathTooLong, check_request
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
    ) -> None:
        self._spaces = spaces
        self._backends = backends
        self._authenticate = authenticate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        method = request.method
        if method not in DAV_METHODS:
            raise HTTPException(
                405, f"WebDAV method {method} is not supported", {"Allow": ALLOW_ALL}
            )
        try:
            check_request(scope)
        except PathTooLong as exc:
            raise UriTooLong(str(exc)) from exc
        except BadPath as exc:
            raise BadRequest(str(exc)) from exc
        space_id, path = _split(scope["path"][len(scope.get("root_path", "")) :])
        principal = await self._authenticate(request)
        view = await self._spaces.get_visible(principal, space_id)
        role = self._spaces.role(principal, view)
        if role is None:
            raise NotFound(f"no space {space_id}")
        space = view.space
        if space.status == "disabled":
            raise Forbidden("the space is disabled; restore it to use its files")
        if space.availability != "available":
            raise Unavailable("the storage holding this space cannot be reached; try again later")
        if method == "PUT" and "oc-chunked" in request.headers:
            # Each chunk would be stored as a file of its own name (data loss for the client).
            raise NotSupported("chunked uploads (OC-Chunked) are not supported")
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
            send = _allowing(send, ALLOW_ALL if writes else ALLOW_READS)
        scope = _telling(scope, WRITER_PERMISSIONS if writes else "", space.quota_total)
        spool = None
        if method == "PUT":
            spool, scope, receive = await _within_quota(
                Request(scope, receive), files.sizes, space_id, path, space.quota_total
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


def _allowing(send: Send, allow: str) -> Send:
    """`send` with the response's `Allow` replaced by `allow`."""

    async def with_allow(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
            message = {**message, "headers": [*headers, (b"allow", allow.encode())]}
        await send(message)

    return with_allow


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
    """Refuse a PUT that would take the space over its quota. Usage comes from the back end,
    not our copy, which lags behind a burst of writes. A body without Content-Length is
    spooled first (up to what is left), then replayed with its length."""
    if not total:
        return None, request.scope, request.receive
    try:
        used = (await sizes.get_space(space_id)).used
        replaced = (await sizes.stat(space_id, path)).size
    except PathNotFound:
        replaced = 0
    except StorageError as exc:
        raise Unavailable(f"the storage could not tell the space's usage: {exc}") from exc
    allowed = total - used + replaced
    declared = whole_number(request.headers.get("content-length", ""))
    if declared is not None:
        if declared > allowed:
            raise InsufficientStorage(_over_quota(declared, allowed))
        return None, request.scope, request.receive
    # Closed by the caller once the provider has read it.
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES)  # noqa: SIM115
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > allowed:
            spool.close()
            raise InsufficientStorage(_over_quota(size, allowed))
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


def _over_quota(size: int, allowed: int) -> str:
    return f"the file ({size} bytes) does not fit in the space's quota ({allowed} bytes left)"
