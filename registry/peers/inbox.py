"""The idempotent inbox of messages from peers.

Every message a registry sends a peer carries a message id (`Idempotency-Key`, covered by the
signature). The receiver records the id before it handles the message and the answer after,
and keeps both at least `KEPT` (`runtime/retention.py` prunes): a repeat is answered with the
first answer, status and body, without being handled again. The id's row is inserted first,
so of two replicas receiving one message at once exactly one handles it; the other waits a
little for that answer (else 409 `message_in_progress`, and the sender tries again).

A refusal of the handler (a 4xx) is an answer too and is kept; a crash or a 5xx is not: the
row goes, and a repeat is handled afresh. Should a replica die between handling and recording,
a repeat after `HANDLING_LEASE` is handled again, so handlers stay idempotent themselves.

A peer endpoint whose body names its sender in `domain` goes through it with one line:
`Resource(PATH, {"POST": inbox.endpoint(f)})`, where `f(peer, doc)` handles the verified peer's
message and returns the JSON answer. An endpoint that finds its sender otherwise (OCM names it
by `sender` or `owner` addresses, or by the share a notification is about) verifies the peer
itself and hands its domain over with `inbox.handle(request, domain, act)`. OCM servers that send no
message id (Nextcloud, Reva) are handled every time: those handlers are idempotent by the
keys of what they record.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response

from registry.core.clock import Clock
from registry.core.errors import ApiError
from registry.core.http import json_object, read_body
from registry.core.models import InboxMessage, table
from registry.core.responses import JSONResponse
from registry.core.unique import insert_once
from registry.peers.errors import MessageIdInvalid, MessageInProgress, RepeatedRefusal
from registry.peers.guard import PeerGuard, Transaction, peer_domain
from registry.peers.store import PeerRecord

__all__ = ["HEADER", "KEPT", "Inbox", "PeerHandler", "prune"]

inbox = table(InboxMessage)

HEADER = "Idempotency-Key"
KEPT = timedelta(hours=24)
HANDLING_LEASE = timedelta(seconds=60)  # a replica handling a message longer is presumed dead
WAIT_FOR_OTHER_S = 5.0  # how long a repeat waits for the replica handling the first
POLL_S = 0.05
_MESSAGE_ID = re.compile(r"[\x21-\x7e]{1,128}")  # visible ASCII, as the sender's event ids

Answer = dict[str, Any]
PeerHandler = Callable[[PeerRecord, dict[str, Any]], Awaitable[Answer]]


class Inbox:
    def __init__(self, transaction: Transaction, guard: PeerGuard, clock: Clock) -> None:
        self._transaction = transaction
        self._guard = guard
        self._clock = clock

    def endpoint(
        self, handle: PeerHandler, *, allow_suspended: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        """A route that checks the sending peer (named by the body's `domain`), then hands
        its message to `handle` once per message id."""

        async def receive(request: Request) -> Response:
            body = await read_body(request)
            doc = json_object(body)
            domain = peer_domain(doc.get("domain"))
            peer = await self._guard.check(request, body, domain, allow_suspended=allow_suspended)
            return JSONResponse(await self.handle(request, peer.domain, lambda: handle(peer, doc)))

        return receive

    async def handle(
        self, request: Request, sender: str, act: Callable[[], Awaitable[Answer]]
    ) -> Answer:
        """`act()` once per message id that `sender` (the domain whose signature on `request`
        was verified) gives `request` (every time when it gives none)."""
        return await self.once(sender, _message_id(request), act)

    async def once(
        self, peer: str, message_id: str | None, handle: Callable[[], Awaitable[Answer]]
    ) -> Answer:
        """`handle()`'s answer for the first delivery of `message_id` from `peer`; the same
        answer (or refusal) for a repeat. A message without an id is simply handled."""
        if message_id is None:
            return await handle()
        if not await self._claim(peer, message_id):
            return await self._earlier(peer, message_id)
        try:
            answer = await handle()
        except ApiError as exc:
            if exc.status >= 500:
                await self._forget(peer, message_id)
            else:
                refusal = {"code": exc.code, "message": exc.message}
                await self._record(peer, message_id, exc.status, refusal)
            raise
        except BaseException:
            await self._forget(peer, message_id)
            raise
        await self._record(peer, message_id, 200, answer)
        return answer

    async def _claim(self, peer: str, message_id: str) -> bool:
        """Whether this call handles the message: it is new, or its handler is presumed dead."""
        now = self._clock.now()
        row = {"peer": peer, "message_id": message_id, "received_at": now}
        async with self._transaction() as conn:
            if await insert_once(conn, inbox, row):
                return True
            taken = await conn.execute(
                update(inbox)
                .where(
                    _key(peer, message_id),
                    inbox.c.status.is_(None),
                    inbox.c.received_at < now - HANDLING_LEASE,
                )
                .values(received_at=now)
            )
            return taken.rowcount == 1

    async def _earlier(self, peer: str, message_id: str) -> Answer:
        """The answer given to the first delivery, once the replica handling it has one."""
        for _attempt in range(int(WAIT_FOR_OTHER_S / POLL_S)):
            async with self._transaction() as conn:
                row = (
                    await conn.execute(
                        select(inbox.c.status, inbox.c.answer).where(_key(peer, message_id))
                    )
                ).first()
            if row is not None and row.status is not None:
                if row.status >= 400:
                    raise RepeatedRefusal(row.status, row.answer["code"], row.answer["message"])
                return dict(row.answer)
            await asyncio.sleep(POLL_S)
        raise MessageInProgress(
            f"message {message_id} is being handled; send it again later",
            headers={"Retry-After": "1"},
        )

    async def _record(self, peer: str, message_id: str, status: int, answer: Answer) -> None:
        async with self._transaction() as conn:
            await conn.execute(
                update(inbox).where(_key(peer, message_id)).values(status=status, answer=answer)
            )

    async def _forget(self, peer: str, message_id: str) -> None:
        async with self._transaction() as conn:
            await conn.execute(delete(inbox).where(_key(peer, message_id)))


def _key(peer: str, message_id: str) -> Any:
    return and_(inbox.c.peer == peer, inbox.c.message_id == message_id)


def _message_id(request: Request) -> str | None:
    values = request.headers.getlist(HEADER)
    if not values:
        return None
    if len(values) > 1 or not _MESSAGE_ID.fullmatch(values[0]):
        raise MessageIdInvalid(f"{HEADER} must be given once, 1-128 visible ASCII characters")
    return values[0]


async def prune(conn: AsyncConnection, now: datetime) -> int:
    """Forget messages received more than `KEPT` ago."""
    gone = await conn.execute(delete(inbox).where(inbox.c.received_at < now - KEPT))
    return int(gone.rowcount or 0)
