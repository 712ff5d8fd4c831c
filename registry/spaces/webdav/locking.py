"""WebDAV class 2 locking (RFC 4918 6, 9.10, 9.11): LOCK, UNLOCK and the check that a write
submits the token of every lock protecting what it changes. Locks live in the database, so a
lock taken through one replica holds at every other."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from starlette.responses import Response

from registry.core.clock import Clock
from registry.core.errors import BadRequest, Conflict, Forbidden, Locked, PreconditionFailed
from registry.core.http import read_body
from registry.spaces.webdav import if_header, lock_store
from registry.spaces.webdav.lock_store import Lock
from registry.spaces.webdav.paths import parent
from registry.spaces.webdav.target import DavTarget
from registry.spaces.webdav.xml import XML_MEDIA_TYPE, dav, element, parse, serialize

TOKEN_SCHEME = "opaquelocktoken:"
DEFAULT_TIMEOUT_S = 3600
MAX_TIMEOUT_S = 7 * 24 * 3600  # also what "Infinite" gets: abandoned locks end some day


@dataclass(frozen=True)
class Change:
    """What a write does to one resource, which decides whose locks it must submit: its own
    and those above it at depth infinity, and those below it when `subtree` (it is deleted
    or replaced whole); when it joins or leaves its folder (`membership`; None: if it does
    not exist yet), a depth-0 lock of that folder too (RFC 4918 7.5)."""

    path: str
    subtree: bool = False
    membership: bool | None = False


class Locks:
    def __init__(self, engine: AsyncEngine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    async def check_write(self, target: DavTarget, changes: list[Change]) -> None:
        """423 unless the request submits a token of every lock protecting what it
        `changes`; 412 if its `If` header is false."""
        header = target.request.headers.get("if")
        lists = if_header.parse(header) if header is not None else []
        now = self._clock.now()
        async with self._engine.connect() as conn:
            held: list[Lock] = []
            for change in changes:
                held += await lock_store.covering(conn, target.space_id, change.path, now)
                if change.subtree:
                    held += await lock_store.below(conn, target.space_id, change.path, now)
                if change.membership is not False and change.path != "/":
                    held += await self._membership(conn, target, change, now)
            submitted = await lock_store.by_tokens(conn, sorted(if_header.tokens(lists)), now)
        if lists and not await if_header.evaluate(lists, self._holds(target, submitted)):
            raise PreconditionFailed("the If header's conditions are not met")
        ours = {lock.token for lock in submitted if lock.principal == target.principal.user_id}
        for root in {lock.path for lock in held}:
            if not any(lock.token in ours for lock in held if lock.path == root):
                raise Locked(f"{root} is locked; submit its lock token in an If header")

    async def _membership(
        self, conn: AsyncConnection, target: DavTarget, change: Change, now: datetime
    ) -> list[Lock]:
        """The depth-0 locks of the folder `change.path` joins or leaves."""
        folder = parent(change.path)
        above = await lock_store.covering(conn, target.space_id, folder, now)
        found = [lock for lock in above if lock.path == folder and lock.depth == "0"]
        if found and change.membership is None and await target.etag(change.path) is not None:
            return []  # it is there already: writing it changes no membership
        return found

    def _holds(self, target: DavTarget, submitted: list[Lock]) -> if_header.Holds:
        async def holds(resource: str | None, condition: if_header.Condition) -> bool:
            path = target.path if resource is None else target.path_of(resource)
            if path is None:
                return False
            if condition.token is not None:
                return any(
                    lock.token == condition.token
                    and lock.space_id == target.space_id
                    and lock.covers(path)
                    for lock in submitted
                )
            etag = await target.etag(path)
            return etag is not None and if_header.same_etag(etag, condition.etag or "")

        return holds

    async def lock(
        self, target: DavTarget, create: Callable[[], Awaitable[Response | None]]
    ) -> Response:
        """A new lock from the body's `lockinfo`, or a refresh when there is no body. Once no
        lock is in the way, `create` makes what is locked if nothing is there yet: its answer
        (a refusal is passed on, and no lock taken), or None when something was there."""
        info = parse(await read_body(target.request))
        seconds = _timeout(target.request.headers.get("timeout"))
        if info is None:
            return await self._refresh(target, seconds)
        if info.tag != dav("lockinfo"):
            raise BadRequest("a LOCK body is a DAV:lockinfo")
        depth = target.request.headers.get("depth", "infinity").lower()
        if depth not in {"0", "infinity"}:
            raise BadRequest("a lock's Depth is 0 or infinity")
        scope = _scope(info)
        owner = info.find(dav("owner"))
        now = self._clock.now()
        lock = Lock(
            f"{TOKEN_SCHEME}{uuid.uuid4()}",
            target.space_id,
            target.path,
            depth,
            scope,
            "" if owner is None else ET.tostring(owner, encoding="unicode"),
            target.principal.user_id,
            seconds,
            now + timedelta(seconds=seconds),
        )
        async with self._engine.begin() as conn:
            await lock_store.hold_space(conn, target.space_id)
            taken = await lock_store.covering(conn, target.space_id, target.path, now)
            if depth == "infinity":
                taken += await lock_store.below(conn, target.space_id, target.path, now)
            if any(scope == "exclusive" or held.scope == "exclusive" for held in taken):
                raise Locked(f"{target.path} is locked already")
            created = await create()
            if created is not None and created.status_code >= 300:
                return created
            await lock_store.add(conn, lock, now)
        status = 200 if created is None else created.status_code
        headers = {"Lock-Token": f"<{lock.token}>"}
        return _answer(target, [lock], status, headers)

    async def _refresh(self, target: DavTarget, seconds: int) -> Response:
        header = target.request.headers.get("if")
        if header is None:
            raise BadRequest("a LOCK without a body refreshes a lock named in its If header")
        now = self._clock.now()
        async with self._engine.begin() as conn:
            found = await lock_store.by_tokens(
                conn, sorted(if_header.tokens(if_header.parse(header))), now
            )
            mine = [
                lock
                for lock in found
                if lock.space_id == target.space_id
                and lock.covers(target.path)
                and lock.principal == target.principal.user_id
            ]
            if not mine:
                raise PreconditionFailed("the If header names no lock of this resource")
            until = now + timedelta(seconds=seconds)
            for lock in mine:
                await lock_store.refresh(conn, lock.token, seconds, until)
        refreshed = [_with_timeout(lock, seconds) for lock in mine]
        return _answer(target, refreshed, 200, {})

    async def unlock(self, target: DavTarget) -> Response:
        token = target.request.headers.get("lock-token", "").strip().strip("<>")
        if not token:
            raise BadRequest("UNLOCK names the lock in a Lock-Token header")
        now = self._clock.now()
        async with self._engine.begin() as conn:
            found = await lock_store.by_tokens(conn, [token], now)
            if (
                not found
                or found[0].space_id != target.space_id
                or not found[0].covers(target.path)
            ):
                raise Conflict("no such lock on this resource", code="lockTokenMatchesRequestUri")
            if found[0].principal != target.principal.user_id:
                raise Forbidden("only who took a lock may remove it")
            await lock_store.remove(conn, token)
        return Response(status_code=204)

    async def forget(self, space_id: str, path: str) -> None:
        """`path` was deleted or moved away: its locks and those below it go with it."""
        async with self._engine.begin() as conn:
            await lock_store.remove_below(conn, space_id, path)

    async def active(self, space_id: str) -> list[Lock]:
        async with self._engine.connect() as conn:
            return await lock_store.in_space(conn, space_id, self._clock.now())


def lockdiscovery(target: DavTarget, locks: list[Lock]) -> ET.Element:
    return element(dav("lockdiscovery"), None, *(_activelock(target, lock) for lock in locks))


def supportedlock() -> ET.Element:
    entries = [
        element(
            dav("lockentry"),
            None,
            element(dav("lockscope"), None, element(dav(scope))),
            element(dav("locktype"), None, element(dav("write"))),
        )
        for scope in ("exclusive", "shared")
    ]
    return element(dav("supportedlock"), None, *entries)


def _activelock(target: DavTarget, lock: Lock) -> ET.Element:
    parts = [
        element(dav("locktype"), None, element(dav("write"))),
        element(dav("lockscope"), None, element(dav(lock.scope))),
        element(dav("depth"), lock.depth),
    ]
    if lock.owner:
        parts.append(ET.fromstring(lock.owner))
    parts += [
        element(dav("timeout"), f"Second-{lock.timeout_seconds or MAX_TIMEOUT_S}"),
        element(dav("locktoken"), None, element(dav("href"), lock.token)),
        element(dav("lockroot"), None, element(dav("href"), target.href(lock.path))),
    ]
    return element(dav("activelock"), None, *parts)


def _answer(target: DavTarget, locks: list[Lock], status: int, headers: dict[str, str]) -> Response:
    body = element(dav("prop"), None, lockdiscovery(target, locks))
    return Response(serialize(body), status, headers, media_type=XML_MEDIA_TYPE)


def _with_timeout(lock: Lock, seconds: int) -> Lock:
    return Lock(**{**lock.__dict__, "timeout_seconds": seconds})


def _scope(info: ET.Element) -> str:
    scope = info.find(dav("lockscope"))
    kinds = [] if scope is None else [child.tag for child in scope]
    if kinds == [dav("exclusive")]:
        return "exclusive"
    if kinds == [dav("shared")]:
        return "shared"
    raise BadRequest("a lock's scope is DAV:exclusive or DAV:shared")


def _timeout(header: str | None) -> int:
    """The first timeout of the header we understand, at most MAX_TIMEOUT_S."""
    for value in (header or "").split(","):
        value = value.strip()
        if value.lower() == "infinite":
            return MAX_TIMEOUT_S
        seconds = value[len("Second-") :] if value.lower().startswith("second-") else ""
        if seconds.isascii() and seconds.isdigit():
            return max(1, min(int(seconds), MAX_TIMEOUT_S))
    return DEFAULT_TIMEOUT_S
