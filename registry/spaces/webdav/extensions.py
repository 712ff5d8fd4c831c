"""Where the gateway hands an authorised WebDAV request: locks are taken, checked and
released here, dead properties stored and added to PROPFIND answers, and everything else
goes on to the space's back end (`forward`), without the headers only we understand."""

from __future__ import annotations

from starlette.responses import Response
from starlette.types import ASGIApp, Scope, Send

from registry.core.http import read_body
from registry.spaces.webdav import chunking_v1, propfind
from registry.spaces.webdav.asgi import captured, replaying, with_header
from registry.spaces.webdav.locking import Change, Locks
from registry.spaces.webdav.paths import is_within
from registry.spaces.webdav.properties import DeadProperties
from registry.spaces.webdav.target import DavTarget
from registry.spaces.webdav.uploads import ChunkedUploads

# Ours alone: the back end would judge our lock tokens as unknown.
OUR_HEADERS = frozenset({b"if", b"lock-token", b"timeout"})
DAV_CLASSES = b"1, 2"
# Answers with no body worth streaming, whose success moves locks and properties.
FOLLOWED = frozenset({"DELETE", "MOVE", "COPY"})


class DavExtensions:
    def __init__(self, locks: Locks, properties: DeadProperties, uploads: ChunkedUploads) -> None:
        self.locks = locks
        self.properties = properties
        self.uploads = uploads

    async def serve(self, target: DavTarget, forward: ASGIApp, send: Send) -> None:
        request = target.request
        method = request.method
        scope: Scope = {
            **request.scope,
            "headers": [(k, v) for k, v in request.scope["headers"] if k not in OUR_HEADERS],
        }
        if chunking_v1.is_chunk(target):
            await chunking_v1.put_chunk(self.uploads, self.locks, target, forward, scope, send)
            return
        changed = _changes(target, method)
        if changed or "if" in request.headers:  # a read's If header holds too (RFC 4918 10.4)
            await self.locks.check_write(target, changed)
        answer: Response | None = None
        if method == "LOCK":

            async def create() -> Response | None:
                """An empty file where nothing is (RFC 4918 7.3); None where something is."""
                if await target.etag(target.path) is not None:
                    return None
                await self.locks.check_write(target, [Change(target.path, membership=True)])
                return await captured(forward, _empty_put(scope), replaying(b""))

            answer = await self.locks.lock(target, create)
        elif method == "UNLOCK":
            answer = await self.locks.unlock(target)
        elif method == "PROPPATCH":
            answer = await self.properties.proppatch(target)
        elif method == "PROPFIND":
            await self._propfind(target, scope, forward, send)
            return
        elif method == "OPTIONS":
            send = with_header(send, b"dav", DAV_CLASSES)
        if answer is not None:
            await answer(scope, request.receive, send)
            return
        if method not in FOLLOWED:
            await forward(scope, request.receive, send)
            return
        # Locks and properties follow before the client hears of it, so its next request
        # finds them where they now are.
        answer = await captured(forward, scope, request.receive)
        if 200 <= answer.status_code < 300:
            await self._after(target, method)
        await answer(scope, request.receive, send)

    async def _propfind(
        self, target: DavTarget, scope: Scope, forward: ASGIApp, send: Send
    ) -> None:
        body = await read_body(target.request)
        asked = propfind.Asked.of(body)
        locks = await self.locks.active(target.space_id) if asked.wants_locks() else []
        locks = [
            lock for lock in locks if is_within(lock.path, target.path) or lock.covers(target.path)
        ]
        depth = target.request.headers.get("depth", "infinity")
        dead = (
            await self.properties.listed(target.space_id, target.path, depth)
            if asked.wants_dead()
            else {}
        )
        if not (locks or dead or asked.names & propfind.LOCK_PROPERTIES):
            await forward(scope, replaying(body), send)  # nothing to add: stream it through
            return
        answer = await captured(forward, scope, replaying(body))
        if answer.status_code == 207:
            completed = propfind.complete(target, bytes(answer.body), asked, dead, locks)
            headers = {k: v for k, v in answer.headers.items() if k != "content-length"}
            answer = Response(completed, 207, headers)
        await answer(scope, replaying(b""), send)

    async def _after(self, target: DavTarget, method: str) -> None:
        """A write succeeded: locks and properties follow what it did to the files."""
        destination = target.destination()
        if method == "DELETE":
            await self.locks.forget(target.space_id, target.path)
            await self.properties.deleted(target.space_id, target.path)
        elif method in {"MOVE", "COPY"} and destination is not None:
            moving = method == "MOVE"
            if moving:
                await self.locks.forget(target.space_id, target.path)
            subtree = moving or target.request.headers.get("depth", "infinity") != "0"
            await self.properties.copied(
                target.space_id, target.path, destination, subtree=subtree, keep=not moving
            )


def _changes(target: DavTarget, method: str) -> list[Change]:
    """What a method changes: the resources whose locks it must hold the tokens of."""
    destination = target.destination()
    if method == "PUT":
        return [Change(target.path, membership=None)]
    if method == "PROPPATCH":
        return [Change(target.path)]
    if method in {"MKCOL", "DELETE"}:
        return [Change(target.path, subtree=method == "DELETE", membership=True)]
    if method in {"MOVE", "COPY"} and destination is not None:
        source = [Change(target.path, True, True)] if method == "MOVE" else []
        return [*source, Change(destination, True, None)]
    return []


def _empty_put(scope: Scope) -> Scope:
    """A PUT of nothing where a LOCK found no resource: RFC 4918 7.3 makes it a file."""
    headers = [(k, v) for k, v in scope["headers"] if k not in {b"content-length", b"content-type"}]
    return {**scope, "method": "PUT", "headers": [*headers, (b"content-length", b"0")]}
