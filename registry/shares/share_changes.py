"""Pushing a shared space's changes to the peers subscribed to it (the sharer's side).

A fan-out of the unit of work: each change logged for a space that peers hold a live
subscription to becomes one signed message per subscription, queued in the outbox in the
change's own transaction, numbered by the subscription's next `seq`. Its message id is the
subscription and the change's cursor, the same however often it is sent, so the receiver
drops repeats. Only what the peer's users may know goes: the kinds in `PUSHED` with the keys
they list. A shared folder's changes are logged for its share space with paths below the
folder (`spaces/provider_events.py`), so nothing above it is named, and a change elsewhere
in the holding space is no change of the share space and is not sent at all.

Each subscribe and renewal is followed by a `state` message: the space's root ETag and size
as they are, at the subscription's current `seq` (not a new one): a mountpoint holds the state
from the moment it subscribes, however late it joined the subscription, and a change made
before then, or one it missed, is not lost on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from registry.changes.events import ChangeEvent
from registry.core.responses import timestamp
from registry.outbox import store as outbox
from registry.shares import store
from registry.shares.subscriptions import subscriptions
from registry.spaces.store import spaces

# A subscription's peer (its base URL, None if no longer a peer) and its accepted shares.
Target = tuple[str | None, list[str]]

SHARE_CHANGES_PATH = "/api/v1/peering/share-changes"
# The space's state as it is (root ETag and size) at a subscription's current `seq`: a kind of
# message of its own, sent at each subscribe and renewal.
STATE = "state"
# The kinds of change a subscribed peer hears of, and what of each change's data it gets.
PUSHED: dict[str, tuple[str, ...]] = {
    "content": ("etag", "used", "paths", "pathsTruncated"),
    "renamed": ("name",),
    "availability": ("availability",),
    "disabled": (),
    "restored": (),
    "deleted": (),
}


class SharePush:
    """Queues the change messages of the spaces peers subscribed to; we are `domain`."""

    def __init__(self, domain: str) -> None:
        self._domain = domain

    async def fan_out(self, conn: AsyncConnection, events: Sequence[ChangeEvent]) -> None:
        pushed = [event for event in events if event.kind in PUSHED]
        if not pushed:
            return
        live = await conn.execute(
            select(subscriptions).where(
                subscriptions.c.space_id.in_({event.space_id for event in pushed}),
                subscriptions.c.expires_at > pushed[0].time,
            )
        )
        by_space: dict[str, list[tuple[Any, Target]]] = {}
        for row in live:  # whom each goes to, read once however many changes it gets
            by_space.setdefault(row.space_id, []).append((row, await _target(conn, row)))
        for event in pushed:
            for subscription, target in by_space.get(event.space_id, ()):
                data = {k: event.data[k] for k in PUSHED[event.kind] if k in event.data}
                change = (event.kind, data, event.time)
                await self._send(conn, subscription, target, change, str(event.seq))

    async def state(
        self, conn: AsyncConnection, subscription: Any, share_id: str, now: datetime
    ) -> None:
        """The space's state as it is, at the subscription's `seq`, for a subscribe or a
        renewal through the share `share_id` (once per share and `seq`)."""
        found = select(spaces.c.etag, spaces.c.quota_used).where(
            spaces.c.id == subscription.space_id
        )
        space = (await conn.execute(found)).first()
        if space is not None and space.etag:
            data = {"etag": space.etag, "used": space.quota_used}
            key = f"{STATE}:{share_id}:{subscription.seq}"
            target = await _target(conn, subscription)
            await self._send(conn, subscription, target, (STATE, data, now), key, numbered=False)

    async def _send(
        self,
        conn: AsyncConnection,
        subscription: Any,
        target: Target,
        change: tuple[str, dict[str, Any], datetime],
        key: str,
        *,
        numbered: bool = True,
    ) -> None:
        """Queue `change` (kind, data, time) under the subscription to `target`, its message
        id made of `key`, with the subscription's next `seq` (its current one unless
        `numbered`)."""
        kind, data, time = change
        peer, accepted = target
        if peer is None or not accepted:
            return  # the peering is gone, or the last share is ending: its cancel is on its way
        seq = await _next_seq(conn, subscription.id) if numbered else subscription.seq
        body = {
            "domain": self._domain,
            "subscriptionId": subscription.id,
            "seq": seq,
            "shares": accepted,
            "change": {"type": kind, "time": timestamp(time), "data": data},
        }
        event_id = f"{subscription.id}:{key}"
        await outbox.queue_peer(conn, event_id, peer + SHARE_CHANGES_PATH, body, time)


async def _target(conn: AsyncConnection, subscription: Any) -> Target:
    """The subscribed peer's base URL (None: no longer a peer) and its accepted shares of the
    space, which a message names."""
    peer = await store.peer_base_url(conn, subscription.peer_domain)
    shares = await conn.execute(
        select(store.outgoing.c.id).where(
            store.outgoing.c.space_id == subscription.space_id,
            store.outgoing.c.peer_domain == subscription.peer_domain,
            store.outgoing.c.state == store.ACCEPTED,
        )
    )
    return peer, sorted(shares.scalars())


async def _next_seq(conn: AsyncConnection, subscription_id: str) -> int:
    numbered = (
        update(subscriptions)
        .where(subscriptions.c.id == subscription_id)
        .values(seq=subscriptions.c.seq + 1)
        .returning(subscriptions.c.seq)
    )
    return int((await conn.execute(numbered)).scalar_one())
