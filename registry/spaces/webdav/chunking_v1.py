"""ownCloud's first chunking (`OC-Chunked: 1`): each chunk is a PUT of
`<folder>/<name>-chunking-<transfer id>-<chunk count>-<chunk index>`, and the upload is
complete when every index has come. The file is then written to `<folder>/<name>`."""

from __future__ import annotations

import re
from urllib.parse import quote

from starlette.responses import Response
from starlette.types import ASGIApp, Scope, Send

from common.bounded import read_capped
from registry.core.errors import BadRequest, InsufficientStorage, PayloadTooLarge
from registry.core.http import whole_number
from registry.spaces.webdav.asgi import captured, replaying
from registry.spaces.webdav.locking import Change, Locks
from registry.spaces.webdav.quota import over_quota, room
from registry.spaces.webdav.target import DavTarget
from registry.spaces.webdav.uploads import MAX_CHUNK_BYTES, ChunkedUploads, Upload

CHUNK = re.compile(
    r"(?P<name>.+)-chunking-(?P<transfer>[^-]+)-(?P<count>\d{1,5})-(?P<index>\d{1,5})"
)
# What a chunk's request says about that chunk or the chunking only, not about the file.
CHUNK_HEADERS = frozenset(
    {b"content-length", b"transfer-encoding", b"oc-chunked", b"oc-total-length", b"expect"}
)


def is_chunk(target: DavTarget) -> bool:
    return target.request.method == "PUT" and "oc-chunked" in target.request.headers


async def put_chunk(
    uploads: ChunkedUploads,
    locks: Locks,
    target: DavTarget,
    forward: ASGIApp,
    scope: Scope,
    send: Send,
) -> None:
    folder, _, chunk_name = target.path.rpartition("/")
    parsed = CHUNK.fullmatch(chunk_name)
    if parsed is None:
        raise BadRequest("an OC-Chunked PUT names <name>-chunking-<id>-<count>-<index>")
    count, index = int(parsed["count"]), int(parsed["index"])
    if not 0 <= index < count:
        raise BadRequest(f"chunk {index} of {count} does not exist")
    final = f"{folder}/{parsed['name']}"
    file = target.at(final)
    await locks.check_write(file, [Change(final, membership=None)])
    request = target.request
    declared = whole_number(request.headers.get("oc-total-length", ""))
    if declared is not None:  # refused before any chunk is kept, if the total cannot fit
        allowed = await room(target.files.sizes, target.space_id, final, target.quota)
        if allowed is not None and declared > allowed:
            raise InsufficientStorage(over_quota(declared, allowed))
    data = await read_capped(
        request.stream(), MAX_CHUNK_BYTES, request.headers.get("content-length")
    )
    if data is None:
        raise PayloadTooLarge(f"a chunk may hold at most {MAX_CHUNK_BYTES} bytes")
    key = f"v1\0{target.space_id}\0{final}\0{parsed['transfer']}\0{count}"
    upload = await uploads.add(
        target.principal.user_id, key, str(index), data, space_id=target.space_id
    )
    assert upload is not None  # a v1 upload starts with any of its chunks
    if len(upload.chunks) < count:
        await Response(status_code=201)(scope, replaying(b""), send)
        return
    answer = await _write(uploads, upload, file, forward, scope)
    await answer(scope, replaying(b""), send)


async def _write(
    uploads: ChunkedUploads, upload: Upload, file: DavTarget, forward: ASGIApp, scope: Scope
) -> Response:
    """PUT the whole file; the upload is over whatever the answer (a client starts again)."""
    path = f"{file.prefix}{file.path}"
    headers = [(k, v) for k, v in scope["headers"] if k not in CHUNK_HEADERS]
    length = str(upload.size).encode()
    put: Scope = {
        **scope,
        "path": path,
        "raw_path": quote(path).encode(),
        "headers": [*headers, (b"content-length", length)],
    }
    try:
        return await captured(forward, put, uploads.body(upload))
    finally:
        await uploads.end(upload)
