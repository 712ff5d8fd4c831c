"""Shares peers send to our users (paris's side of the acceptance story).

`POST /ocm/shares` (signed by the sending peer, whose domain is that of `owner` and
`sender`) records a *pending* share for one of our users, once per `providerId` and sender:
a repeat answers as the first did. The user accepts it (a *mountpoint* space appears in
their drives and change feed, pointing at the share's WebDAV URL at the peer) or declines
it; the peer hears either through the outbox (`SHARE_ACCEPTED`, `SHARE_DECLINED`, with the
shared secret as Nextcloud wants it). The peer's `SHARE_UNSHARED` removes the mountpoint;
its permission change changes the user's role.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request

from registry.access.principal import USER, Principal, PrincipalKey
from registry.auth.user_store import user_id_named
from registry.changes import log as changes
from registry.core.clock import Clock
from registry.core.http import json_object
from registry.outbox import store as outbox
from registry.peers.errors import NotAPeer
from registry.peers.guard import PeerGuard
from registry.peers.inbox import Inbox
from registry.shares import ocm, renewals, store
from registry.shares.errors import InvalidShare, ShareStateConflict, ShareUnknown, TooManyShares
from registry.shares.outgoing import Discover
from registry.shares.share_json import shares_drive
from registry.spaces import store as spaces
from registry.spaces.service import SpaceService
from registry.spaces.validation import slug

# Per recipient: at most this many new shares in RATE_WINDOW (share spam, the OCM notes say).
SHARES_PER_RECIPIENT = 50
RATE_WINDOW = timedelta(hours=1)
RATE_RETRY_AFTER_S = 600


class IncomingShares:
    def __init__(
        self,
        spaces_service: SpaceService,
        guard: PeerGuard,
        inbox: Inbox,
        discover: Discover,
        domain: str,
        base_url: str,
        clock: Clock,
        *,
        open_federation: bool = False,
        shares_per_recipient: int = SHARES_PER_RECIPIENT,
    ) -> None:
        self._base_url = base_url
        self._spaces = spaces_service
        self._guard = guard
        self._inbox = inbox
        self._discover = discover
        self._domain = domain
        self._clock = clock
        self.limit = shares_per_recipient
        self.open_federation = open_federation  # shares from registries we do not peer with

    async def receive(self, request: Request, body: bytes) -> dict[str, Any]:
        offer = ocm.parse_offer(json_object(body))
        if offer.owner.domain != offer.sender.domain:
            raise InvalidShare([("owner", "owner and sender are accounts of one domain")])
        if offer.share_with.domain != self._domain:
            raise InvalidShare([("shareWith", f"not an account at {self._domain}")])
        sender = await self.sender(request, body, offer.sender.domain)
        return await self._inbox.handle(request, sender, lambda: self._receive(offer, sender))

    async def sender(self, request: Request, body: bytes, domain: str) -> str:
        """`domain`, once `request` is found signed by it: a peer (active), or with open
        federation any registry that discovery finds, with a key it publishes."""
        try:
            return (await self._guard.check(request, body, domain)).domain
        except NotAPeer:
            if not self.open_federation:
                raise
        found = await self._discover(domain)
        await self._guard.check_stranger(request, body, domain, found.jwks_url)
        return domain

    async def _receive(self, offer: ocm.Offer, domain: str) -> dict[str, Any]:
        endpoint = (await self._discover(domain)).ocm.end_point
        try:
            name = await self._record(offer, domain, endpoint)
        except IntegrityError:  # the same share, recorded meanwhile by a concurrent delivery
            name = await self._record(offer, domain, endpoint)
        return {"recipientDisplayName": name}

    async def _record(self, offer: ocm.Offer, domain: str, endpoint: str) -> str:
        """Record `offer` as pending for its recipient unless it is recorded already (once
        per provider id and sender); the recipient's display name."""
        now = self._clock.now()
        async with self._spaces.transaction() as conn:
            user_id = await user_id_named(conn, offer.share_with.user)
            if user_id is None:
                raise InvalidShare([("shareWith", "no such user here")])
            if await store.incoming_for(conn, offer.provider_id, str(offer.sender)) is not None:
                return await store.display_name(conn, user_id)
            if await store.received_since(conn, user_id, now - RATE_WINDOW) >= self.limit:
                raise TooManyShares("too many shares for this user; try later", RATE_RETRY_AFTER_S)
            await store.add_incoming(
                conn,
                {
                    "id": uuid.uuid4().hex,
                    "provider_id": offer.provider_id,
                    "sender": str(offer.sender),
                    "owner": str(offer.owner),
                    "sender_name": offer.sender_name,
                    "owner_name": offer.owner_name,
                    "peer_domain": domain,
                    "ocm_endpoint": endpoint,
                    "user_id": user_id,
                    "name": offer.name,
                    "resource_type": offer.resource_type,
                    "role": offer.role,
                    "webdav_uri": offer.webdav_uri,
                    "secret": offer.secret,
                    "state": store.PENDING,
                },
                now,
            )
            return await store.display_name(conn, user_id)

    async def shared_with(self, principal: Principal) -> list[Any]:
        async with self._spaces.transaction() as conn:
            return list(await store.incoming_of_user(conn, principal.user_id))

    async def shares_drive(
        self, conn: AsyncConnection, principal: Principal
    ) -> list[dict[str, Any]]:
        """The virtual Shares drive, for a user who received shares (`DriveRoutes`, on the
        listing's connection)."""
        if principal.remote is not None:
            return []
        found = await store.incoming_of_user(conn, principal.user_id)
        live = [share for share in found if share.state != store.DECLINED]
        return [shares_drive(live, self._base_url)] if live else []

    async def accept(self, principal: Principal, share_id: str) -> Any:
        """Mount a pending share (accepting an accepted one again changes nothing)."""
        async with self._spaces.transaction() as conn:
            share = await self._own(conn, principal, share_id)
            if share.state == store.ACCEPTED:
                return share
            if share.state != store.PENDING:
                raise ShareStateConflict(f"the share is {share.state}; it cannot be accepted")
            mountpoint = await self._mount(conn, share)
            now = self._clock.now()
            values = {"state": store.ACCEPTED, "mountpoint_id": mountpoint}
            await store.set_incoming(conn, share.id, values, now)
            await _tell(conn, share, "SHARE_ACCEPTED", now)
            await renewals.subscribe(conn, share, self._domain, now)
            return await store.incoming_by_id(conn, share.id)

    async def decline(self, principal: Principal, share_id: str) -> None:
        """Decline a pending share, or remove an accepted one (its mountpoint goes)."""
        async with self._spaces.transaction() as conn:
            share = await self._own(conn, principal, share_id)
            if share.state == store.DECLINED:
                return
            await _unmount(conn, share, self._clock)
            now = self._clock.now()
            await store.set_incoming(conn, share.id, {"state": store.DECLINED}, now)
            await _tell(conn, share, "SHARE_DECLINED", now)
            if share.state == store.ACCEPTED:
                await renewals.leave(conn, share, self._domain, now, cancel=True)

    async def unshared(self, conn: AsyncConnection, share: Any) -> None:
        """The peer ended the share: the mountpoint goes, and the share with it (and our
        subscription to its space with the last of them: the peer ended it already)."""
        await _unmount(conn, share, self._clock)
        await store.delete_incoming(conn, share.id)
        await renewals.leave(conn, share, self._domain, self._clock.now(), cancel=False)

    async def role_changed(self, conn: AsyncConnection, share: Any, role: str) -> None:
        now = self._clock.now()
        await store.set_incoming(conn, share.id, {"role": role}, now)
        if share.mountpoint_id is None:
            return
        await store.set_member_role(conn, share.mountpoint_id, share.user_id, role)
        data = {"principalType": USER, "principalId": share.user_id, "role": role}
        await changes.append(conn, share.mountpoint_id, "member_changed", data, now)

    async def _own(self, conn: AsyncConnection, principal: Principal, share_id: str) -> Any:
        share = await store.incoming_by_id(conn, share_id)
        if share is None or share.user_id != principal.user_id:
            raise ShareUnknown(f"no share {share_id} for you")
        return share

    async def _mount(self, conn: AsyncConnection, share: Any) -> str:
        """A mountpoint space for the share, held by the peer; the user holds its role."""
        space_id = uuid.uuid4().hex
        row = {
            "id": space_id,
            "name": share.name,
            "description": f"shared by {share.owner_name} ({share.owner})",
            "drive_type": "mountpoint",
            "provider": store.MOUNTPOINT_PROVIDER,
            "root_id": f"{space_id}!{space_id}",
            "etag": "",
            "quota_total": None,
            "quota_used": 0,
            "status": "enabled",
            "remote_peer_id": await store.peer_id(conn, share.peer_domain),
            "remote_url": share.webdav_uri,
            "availability": "available",
            "created_by": share.user_id,
        }
        await self._spaces.add_space(conn, f"mountpoint/{slug(share.name)}", row, share.role)
        return space_id


async def _unmount(conn: AsyncConnection, share: Any, clock: Clock) -> None:
    if share.mountpoint_id is None:
        return
    lost = [PrincipalKey(USER, share.user_id)]
    await changes.append(conn, share.mountpoint_id, "deleted", {}, clock.now(), lost=lost)
    await spaces.delete_space(conn, share.mountpoint_id)


async def _tell(conn: AsyncConnection, share: Any, kind: str, now: Any) -> None:
    """Queue a notification of `kind` to the share's sender, in the caller's transaction."""
    body = {
        "notificationType": kind,
        "resourceType": share.resource_type,
        "providerId": share.provider_id,
        "notification": {"sharedSecret": share.secret},
    }
    event_id = f"{share.id}:{kind}"
    await outbox.queue_peer(conn, event_id, share.ocm_endpoint + "/notifications", body, now)
