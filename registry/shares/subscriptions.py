"""Peers' subscriptions to the changes of spaces we share with their users (zurich's side of
change push; the recipient's side, which subscribes, renews and cancels, is `renewals.py`).

We keep one subscription per (space, peer) however many of that peer's users received the
space: a subscription names its share by `providerId` and proves it with the share's secret,
renews the lease of the one subscription, and a cancel removes it only when no other accepted
share of the space to that peer is left. `seq` numbers the changes we send under it
(`share_changes.py`), and each subscribe or renewal is followed by the space's state as it is.
A lease that lapsed makes a new subscription, so the peer sees that it may have missed changes.
A subscription whose lease ran out is pruned by the retention sweep; the peer's subscriptions
go when its partnership is revoked (either side revoking).
"""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from registry.core.clock import Clock
from registry.core.models import ShareSubscription, table
from registry.core.unique import insert_once
from registry.peers.guard import Transaction, hash_token
from registry.peers.store import PeerRecord
from registry.shares import store
from registry.shares.errors import InvalidShare, ShareStateConflict, ShareUnknown

subscriptions = table(ShareSubscription)

SUBSCRIPTIONS_PATH = "/api/v1/peering/share-subscriptions"
SUBSCRIBE, CANCEL = "subscribe", "cancel"
ACTIONS = (SUBSCRIBE, CANCEL)
LEASE = timedelta(hours=1)
# Queues the space's state under a subscription, for a share (`share_changes.SharePush.state`).
SendState = Callable[[AsyncConnection, Any, str, datetime], Awaitable[None]]


class ShareSubscriptions:
    """The sharer's side: a peer's signed subscribe or cancel (through the peers' inbox)."""

    def __init__(
        self,
        transaction: Transaction,
        clock: Clock,
        send_state: SendState,
        *,
        lease: timedelta = LEASE,
    ) -> None:
        self._transaction = transaction
        self._clock = clock
        self._send_state = send_state
        self._lease = lease

    async def receive(self, peer: PeerRecord, doc: dict[str, Any]) -> dict[str, Any]:
        action, provider_id, secret = (doc.get(k) for k in ("action", "providerId", "sharedSecret"))
        errors = [
            (name, "a string is required")
            for name, value in (("providerId", provider_id), ("sharedSecret", secret))
            if not isinstance(value, str) or not value
        ]
        if action not in ACTIONS:
            errors.append(("action", f"one of {', '.join(ACTIONS)}"))
        if errors:
            raise InvalidShare(errors)
        assert isinstance(provider_id, str) and isinstance(secret, str)
        now = self._clock.now()
        async with self._transaction() as conn:
            share = await store.outgoing_by_id(conn, provider_id)
            if share is None or share.peer_domain != peer.domain:
                raise ShareUnknown(f"no share {provider_id} with {peer.domain}")
            if not hmac.compare_digest(share.secret_hash, hash_token(secret)):
                raise ShareUnknown(f"no share {provider_id} with {peer.domain}")
            if action == CANCEL:
                await end(conn, share)
                return {"subscribed": False}
            if share.state == store.DECLINED:
                raise ShareStateConflict("the share was declined; it cannot be subscribed to")
            row = await _subscribe(conn, share.space_id, peer.domain, now + self._lease, now)
            await self._send_state(conn, row, share.id, now)
        return {
            "subscribed": True,
            "subscriptionId": row.id,
            "expiresAt": row.expires_at.isoformat(),
            "seq": row.seq,
        }


async def _subscribe(
    conn: AsyncConnection, space_id: str, peer_domain: str, expires_at: datetime, now: datetime
) -> Any:
    """The one subscription of `peer_domain` to `space_id`, made or renewed until `expires_at`."""
    where = (subscriptions.c.space_id == space_id, subscriptions.c.peer_domain == peer_domain)
    values = {"expires_at": expires_at, "updated_at": now}
    made = {"id": uuid.uuid4().hex, "space_id": space_id, "peer_domain": peer_domain, "seq": 0}
    if not await insert_once(conn, subscriptions, {**made, **values, "created_at": now}):
        # A lapsed lease missed changes: a new subscription, so the peer re-reads the share.
        lapsed = update(subscriptions).where(*where, subscriptions.c.expires_at <= now)
        await conn.execute(lapsed.values(id=made["id"], seq=0))
        await conn.execute(update(subscriptions).where(*where).values(values))
    return (await conn.execute(select(subscriptions).where(*where))).one()


async def end(conn: AsyncConnection, share: Any) -> None:
    """End the peer's subscription to the share's space, unless another of its users still
    holds an accepted share of it (the peer cancelled, or we ended the share)."""
    others = [
        other
        for other in await store.outgoing_in(conn, share.space_id)
        if other.peer_domain == share.peer_domain
        and other.id != share.id
        and other.state == store.ACCEPTED
    ]
    if others:
        return
    await conn.execute(
        delete(subscriptions).where(
            subscriptions.c.space_id == share.space_id,
            subscriptions.c.peer_domain == share.peer_domain,
        )
    )


async def prune_lapsed(conn: AsyncConnection, before: datetime) -> int:
    """Forget subscriptions whose lease ran out before `before` (the peer stopped renewing)."""
    gone = await conn.execute(delete(subscriptions).where(subscriptions.c.expires_at < before))
    return int(gone.rowcount or 0)


async def drop_peer(conn: AsyncConnection, peer_domain: str) -> None:
    """The partnership with `peer_domain` was revoked: its subscriptions end."""
    await conn.execute(delete(subscriptions).where(subscriptions.c.peer_domain == peer_domain))
