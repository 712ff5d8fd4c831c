"""Our subscriptions at peers (paris's side of change push): one per (peer, remote space),
however many of our users accepted a share of that space.

The first acceptance subscribes and the end of the last accepted share cancels: signed peer
messages queued through the outbox in the transaction that accepts or ends the share, so an
accepted share never lacks its subscription even if the peer is down at that moment. A
supervised job (`Renewals`) renews each subscription halfway through its lease, through the
outbox as well, and watches what became of the renewals.

The outbox retries a failed renewal with backoff, so one failed attempt says little; what
counts is whether a renewal got through before the lease ran out, since the peer keeps our
subscription by that lease. A renewal the outbox delivered means the peer answered and holds
the subscription for another lease: the space's mountpoints are available. A lease run out
without one means the peer is unreachable and its changes no longer reach us: the mountpoints
are marked unavailable until a renewal gets through. (The proxy marks them too, on each read
that fails or gets through.) Mountpoints of a peer whose partnership was revoked are marked
unavailable as well.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from registry.core.clock import Clock
from registry.outbox import store as outbox
from registry.peers.guard import Transaction
from registry.shares import store, subscriptions
from registry.shares.subscriptions import CANCEL, LEASE, SUBSCRIBE, SUBSCRIPTIONS_PATH
from registry.spaces import availability
from registry.spaces.store import spaces

RENEWAL_CHECKS_PER_LEASE = 12  # a renewal goes out, and a lapse is seen, within 1/12 of a lease


async def subscribe(
    conn: AsyncConnection,
    share: Any,
    domain: str,
    now: datetime,
    *,
    lease: timedelta = LEASE,
    lapsed: bool = False,
) -> None:
    """`share` was accepted (we are `domain`): subscribe to its space at the peer, unless
    another of our users' shares of it did already, or the sender is no peer of ours (open
    federation: it pushes no changes). Renewed halfway through the lease, so that a renewal
    that fails leaves half a lease of retries. `lapsed`: its mountpoints are unavailable
    until the peer confirms (subscribing anew after a revocation)."""
    peer = await store.peer_base_url(conn, share.peer_domain)
    if peer is None:
        return
    row_id = uuid.uuid4().hex
    event_id = _event_id(row_id, SUBSCRIBE, now)
    values = {
        "id": row_id,
        "peer_domain": share.peer_domain,
        "webdav_uri": share.webdav_uri,
        "renew_at": now + lease / 2,
        "lease_until": now + lease,
        "renewal_id": event_id,
        "lapsed": lapsed,
    }
    if await store.add_remote(conn, values, now):
        await _send(conn, peer, share, domain, SUBSCRIBE, event_id, now)


async def leave(
    conn: AsyncConnection, share: Any, domain: str, now: datetime, *, cancel: bool
) -> None:
    """`share` is no longer accepted (we are `domain`): unless another of our users still
    holds an accepted share of its space, our subscription ends; `cancel`: tell the peer
    (when the peer ended the share, it ended the subscription itself)."""
    held = await store.accepted_of_remote(conn, share.peer_domain, share.webdav_uri)
    if any(other.id != share.id for other in held):
        return
    row = await store.remote_subscription(conn, share.peer_domain, share.webdav_uri)
    if row is None:
        return
    await store.delete_remote(conn, row.id)
    if cancel:
        peer = await store.peer_base_url(conn, share.peer_domain)
        await _send(conn, peer, share, domain, CANCEL, _event_id(row.id, CANCEL, now), now)


async def _send(
    conn: AsyncConnection,
    peer: str | None,
    share: Any,
    domain: str,
    action: str,
    event_id: str,
    now: datetime,
) -> None:
    """Queue `action` to the share's peer at base URL `peer`, naming the share and proving
    it with its secret (the peer keeps one subscription per space and peer, whichever share
    names it)."""
    if peer is None:
        return  # the peering is gone; the peer dropped our subscriptions with it
    body = {
        "domain": domain,
        "action": action,
        "providerId": share.provider_id,
        "sharedSecret": share.secret,
    }
    await outbox.queue_peer(conn, event_id, peer + SUBSCRIPTIONS_PATH, body, now)


async def resubscribe(conn: AsyncConnection, share: Any, domain: str, now: datetime) -> None:
    """We may have missed changes of `share`'s space (a gap in their numbers, or a
    subscription we did not know): renew our subscription now rather than when due, so the
    peer's answer and its state message catch us up."""
    row = await store.remote_subscription(conn, share.peer_domain, share.webdav_uri)
    if row is None:
        await subscribe(conn, share, domain, now)
    else:
        await _queue_renewal(conn, row, share, domain, now, LEASE)


async def _queue_renewal(
    conn: AsyncConnection, row: Any, share: Any, domain: str, now: datetime, lease: timedelta
) -> None:
    """Queue the renewal of our subscription `row`, naming it by `share`; the next is due
    halfway through the lease, and `Renewals` watches what becomes of this one."""
    event_id = _event_id(row.id, SUBSCRIBE, now)
    peer = await store.peer_base_url(conn, share.peer_domain)
    await _send(conn, peer, share, domain, SUBSCRIBE, event_id, now)
    await store.set_remote(conn, row.id, {"renew_at": now + lease / 2, "renewal_id": event_id}, now)


async def partnership_revoked(conn: AsyncConnection, peer_domain: str) -> None:
    """The partnership with `peer_domain` was revoked (by either side): its subscriptions to
    our spaces end, and so do ours to its (no renewal goes to it any more). The mountpoints
    of its shares are marked unavailable by the next `Renewals.check`."""
    await subscriptions.drop_peer(conn, peer_domain)
    await store.delete_remote_of_peer(conn, peer_domain)


def _event_id(row_id: str, action: str, now: datetime) -> str:
    """Message ids differ by time: a renewal is a new message, a repeat of one the same."""
    return f"{row_id}:{action}:{now.timestamp():.6f}"


class Renewals:
    """Renew our subscriptions at peers, and say in the mountpoints' availability whether
    the peers answer (see the module's docstring)."""

    def __init__(
        self,
        transaction: Transaction,
        domain: str,
        clock: Clock,
        *,
        wake: Callable[[], None],
        lease: timedelta = LEASE,
    ) -> None:
        self._transaction = transaction
        self._domain = domain
        self._clock = clock
        self._wake = wake
        self._lease = lease

    async def run(self) -> None:
        while True:
            await self.check()
            await asyncio.sleep(self._lease.total_seconds() / RENEWAL_CHECKS_PER_LEASE)

    async def check(self) -> int:
        """Take in the renewals delivered, the leases run out and the partnerships revoked,
        subscribe anew for accepted shares that have no subscription (peered again after a
        revocation), then queue the renewals that are due; how many renewals were queued."""
        now = self._clock.now()
        async with self._transaction() as conn:
            await self._confirmed(conn, now)
            await self._lapsed(conn, now)
            revoked = await store.revoked_peer_ids(conn)
            if revoked:
                reason = "the partnership with the registry holding these files was revoked"
                which = spaces.c.remote_peer_id.in_(revoked)
                await availability.mark(conn, which, False, reason, now)
            adopted = await store.accepted_unsubscribed(conn)
            for share in adopted:
                await subscribe(conn, share, self._domain, now, lease=self._lease, lapsed=True)
            queued = await self._renew(conn, now)
        if queued or adopted:
            self._wake()
        return queued

    async def _confirmed(self, conn: AsyncConnection, now: datetime) -> None:
        """A renewal delivered: the peer holds the subscription for a lease from then (at
        most the time its answer took less), and answered; mountpoints we had marked
        unavailable for a lapse are available again (only those: an owner's disabling stays
        until the owner's change says otherwise). One given up on: forgotten."""
        waiting = await store.remote_where(conn, store.remote.c.renewal_id.is_not(None))
        states = await store.delivery_states(conn, [row.renewal_id for row in waiting])
        for row in waiting:
            found = states.get(row.renewal_id)
            if found is not None and found.state == "pending":
                continue
            values: dict[str, Any] = {"renewal_id": None}
            if found is not None and found.state == "delivered":
                values |= {"lease_until": found.done_at + self._lease, "lapsed": False}
                if row.lapsed:
                    await self._mark(conn, row, True, "", now)
            await store.set_remote(conn, row.id, values, now)

    async def _lapsed(self, conn: AsyncConnection, now: datetime) -> None:
        ran_out = await store.remote_where(
            conn, store.remote.c.lease_until <= now, store.remote.c.lapsed.is_(False)
        )
        for row in ran_out:
            reason = f"no renewal of our subscription reached {row.peer_domain} in time"
            await self._mark(conn, row, False, reason, now)
            await store.set_remote(conn, row.id, {"lapsed": True}, now)

    async def _renew(self, conn: AsyncConnection, now: datetime) -> int:
        queued = 0
        for row in await store.remote_where(conn, store.remote.c.renew_at <= now):
            held = await store.accepted_of_remote(conn, row.peer_domain, row.webdav_uri)
            if not held:  # no share of it is accepted any more
                await store.delete_remote(conn, row.id)
                continue
            await _queue_renewal(conn, row, held[0], self._domain, now, self._lease)
            queued += 1
        return queued

    async def _mark(
        self, conn: AsyncConnection, row: Any, available: bool, reason: str, now: datetime
    ) -> None:
        held = await store.accepted_of_remote(conn, row.peer_domain, row.webdav_uri)
        mountpoints = [share.mountpoint_id for share in held if share.mountpoint_id is not None]
        await availability.mark(conn, spaces.c.id.in_(mountpoints), available, reason, now)
