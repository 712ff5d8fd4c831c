"""`/dav/uploads/<user>/<upload-id>/<chunk>`: the chunking NG of ownCloud and Nextcloud.
MKCOL starts an upload, a PUT per chunk stores it, MOVE of `<upload-id>/.file` to the file's
WebDAV URL (`Destination`, with `OC-Total-Length`) writes the whole file through the gateway
serving that URL, DELETE abandons it, PROPFIND lists the chunks a client may resume from.

One ASGI app, mounted at `UPLOADS_MOUNT`; another root (`/remote.php/dav/uploads`) mounts the
same app, and the gateways a Destination may name are given as (mount point, app)."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote, unquote, urlsplit

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from common.bounded import read_capped
from registry.access.principal import Authenticate
from registry.core.errors import BadRequest, Forbidden, NotFound, PayloadTooLarge
from registry.core.http import whole_number
from registry.core.routing import allow_header
from registry.spaces.webdav.asgi import captured
from registry.spaces.webdav.paths import check_paths
from registry.spaces.webdav.uploads import MAX_CHUNK_BYTES, ChunkedUploads, Upload
from registry.spaces.webdav.xml import XML_MEDIA_TYPE, dav, element, serialize, status_line

UPLOADS_MOUNT = "/dav/uploads"
METHODS = frozenset({"OPTIONS", "MKCOL", "PUT", "MOVE", "DELETE", "PROPFIND"})
ALLOW = allow_header(METHODS)
WHOLE_FILE = ".file"
# Of the MOVE's headers, those about the move rather than about the file it writes.
MOVE_HEADERS = frozenset(
    {b"destination", b"overwrite", b"content-length", b"transfer-encoding", b"oc-total-length"}
)


class UploadsCollection:
    def __init__(
        self,
        authenticate: Authenticate,
        uploads: ChunkedUploads,
        destinations: Sequence[tuple[str, ASGIApp]],
    ) -> None:
        self._authenticate = authenticate
        self._uploads = uploads
        self._destinations = destinations

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        method = request.method
        if method not in METHODS:
            raise HTTPException(405, f"{method} is not supported on uploads", {"Allow": ALLOW})
        check_paths(scope)
        user, upload_id, chunk = _parts(scope["path"][len(scope.get("root_path", "")) :])
        principal = await self._authenticate(request)
        if user != principal.username:
            raise NotFound("uploads are kept per user: name your own")
        if method == "OPTIONS":
            answer = Response(headers={"Allow": ALLOW, "DAV": "1"})
        elif not upload_id:
            raise Forbidden("name an upload: <user>/<upload-id>")
        else:
            owner, key = principal.user_id, f"ng\0{upload_id}"
            answer = await self._serve(request, owner, key, chunk)
        await answer(scope, receive, send)

    async def _serve(self, request: Request, owner: str, key: str, chunk: str) -> Response:
        method = request.method
        if method == "MKCOL" and not chunk:
            if not await self._uploads.begin(owner, key):
                raise HTTPException(405, "the upload exists already", {"Allow": ALLOW})
            return Response(status_code=201)
        if method == "PUT" and chunk and chunk != WHOLE_FILE:
            declared = request.headers.get("content-length")
            data = await read_capped(request.stream(), MAX_CHUNK_BYTES, declared)
            if data is None:
                raise PayloadTooLarge(f"a chunk may hold at most {MAX_CHUNK_BYTES} bytes")
            if await self._uploads.add(owner, key, chunk, data) is None:
                raise NotFound("no such upload: MKCOL starts one")
            return Response(status_code=201)
        upload = await self._uploads.get(owner, key)
        if upload is None:
            raise NotFound("no such upload")
        if method == "MOVE" and chunk == WHOLE_FILE:
            return await self._write(request, upload)
        if method == "DELETE" and not chunk:
            await self._uploads.end(upload)
            return Response(status_code=204)
        if method == "PROPFIND" and not chunk:
            return _listing(request, upload)
        raise HTTPException(405, f"{method} is not supported here", {"Allow": ALLOW})

    async def _write(self, request: Request, upload: Upload) -> Response:
        """The whole file, as one PUT through the gateway serving the Destination."""
        declared = request.headers.get("oc-total-length")
        if declared is not None and whole_number(declared) != upload.size:
            raise BadRequest(f"the chunks hold {upload.size} bytes, not OC-Total-Length")
        path = unquote(urlsplit(request.headers.get("destination", "")).path)
        mount, gateway = self._gateway_for(path)
        headers = [(k, v) for k, v in request.scope["headers"] if k not in MOVE_HEADERS]
        if request.headers.get("overwrite", "T").upper() == "F":
            headers.append((b"if-none-match", b"*"))
        put: Scope = {
            **request.scope,
            "method": "PUT",
            "path": path,
            "raw_path": quote(path).encode(),
            "root_path": mount,
            "query_string": b"",
            "headers": [*headers, (b"content-length", str(upload.size).encode())],
        }
        try:
            return await captured(gateway, put, self._uploads.body(upload))
        finally:
            await self._uploads.end(upload)  # written or refused, the chunks are spent

    def _gateway_for(self, path: str) -> tuple[str, ASGIApp]:
        for mount, gateway in self._destinations:
            if path.startswith(mount + "/"):
                return mount, gateway
        raise BadRequest("the Destination is not a file's WebDAV URL on this server")


def _parts(relative: str) -> tuple[str, str, str]:
    """(user, upload id, chunk) of `/<user>/<upload-id>/<chunk>`; the last two may be empty."""
    parts = relative.strip("/").split("/") if relative.strip("/") else []
    if not parts or len(parts) > 3 or not all(parts):
        raise NotFound("uploads are at /dav/uploads/<user>/<upload-id>/<chunk>")
    user, upload_id, chunk = (*parts, "", "")[:3]
    return user, upload_id, chunk


def _listing(request: Request, upload: Upload) -> Response:
    """The upload as a collection of its chunks (Depth 0: the collection alone)."""
    base = request.scope.get("root_path", "") + request.scope["path"][
        len(request.scope.get("root_path", "")) :
    ].rstrip("/")
    entries: list[tuple[str, int | None]] = [(quote(base) + "/", None)]
    if request.headers.get("depth", "1") != "0":
        entries += [(quote(f"{base}/{name}"), size) for name, size in upload.chunks]
    responses = []
    for href, size in entries:
        props = (
            [element(dav("resourcetype"), None, element(dav("collection")))]
            if size is None
            else [element(dav("resourcetype")), element(dav("getcontentlength"), str(size))]
        )
        propstat = element(
            dav("propstat"),
            None,
            element(dav("prop"), None, *props),
            element(dav("status"), status_line(200)),
        )
        responses.append(element(dav("response"), None, element(dav("href"), href), propstat))
    body = serialize(element(dav("multistatus"), None, *responses))
    return Response(body, 207, media_type=XML_MEDIA_TYPE)
