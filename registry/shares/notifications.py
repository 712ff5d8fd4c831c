"""`POST /ocm/notifications`: what a peer tells us about a share, in either direction.

About a share we sent (its `providerId` is ours): the recipient accepted or declined it
(`SHARE_UNSHARED` from the recipient is a decline too; a declined share loses its member at
once). About a share we received: the sender ended it (`SHARE_UNSHARED`) or changed its
permissions. Each is checked against the peer the share belongs to (signed, active); an
unknown type answers 501 before anything is read or written.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from registry.access.principal import REMOTE, PrincipalKey
from registry.changes import log as changes
from registry.core.clock import Clock
from registry.core.errors import ApiError
from registry.core.http import json_object
from registry.peers.guard import PeerGuard
from registry.peers.inbox import Inbox
from registry.shares import ocm, store
from registry.shares.errors import InvalidShare, ShareNotSupported, ShareUnknown
from registry.shares.incoming import IncomingShares
from registry.spaces import store as spaces
from registry.spaces.service import SpaceService

ACCEPTED, DECLINED, UNSHARED = "SHARE_ACCEPTED", "SHARE_DECLINED", "SHARE_UNSHARED"
# oCIS sends SHARE_CHANGE_PERMISSION; the draft names RESHARE_CHANGE_PERMISSION.
PERMISSION_CHANGES = frozenset({"SHARE_CHANGE_PERMISSION", "RESHARE_CHANGE_PERMISSION"})
KNOWN = frozenset({ACCEPTED, DECLINED, UNSHARED, *PERMISSION_CHANGES})


class Notifications:
    def __init__(
        self,
        spaces_service: SpaceService,
        guard: PeerGuard,
        inbox: Inbox,
        incoming: IncomingShares,
        clock: Clock,
    ) -> None:
        self._spaces = spaces_service
        self._guard = guard
        self._inbox = inbox
        self._incoming = incoming
        self._clock = clock

    async def receive(self, request: Request, body: bytes) -> None:
        """Check the notification and the peer it comes from, then act on it once per
        message id."""
        doc = json_object(body)
        kind, provider_id = doc.get("notificationType"), doc.get("providerId")
        errors = [
            (name, "a string is required")
            for name, value in (("notificationType", kind), ("providerId", provider_id))
            if not isinstance(value, str) or not value
        ]
        if errors:
            raise InvalidShare(errors)
        assert isinstance(kind, str) and isinstance(provider_id, str)
        if kind not in KNOWN:
            raise ShareNotSupported(f"notificationType {kind!r} is not supported")
        notification = doc.get("notification") or {}
        if not isinstance(notification, dict):
            raise InvalidShare([("notification", "an object")])
        async with self._spaces.transaction() as conn:
            sent = await store.outgoing_by_id(conn, provider_id)
        if sent is not None:
            peer = await self._guard.check(request, body, sent.peer_domain)
            await self._inbox.handle(request, peer.domain, lambda: self._about_sent(sent, kind))
            return
        share, sender = await self._received(request, body, provider_id)
        role = None
        if kind in PERMISSION_CHANGES:
            role = ocm.role_of_permissions(notification.get("permissions"))
            if role is None:
                raise InvalidShare([("notification.permissions", "must grant 'read'")])
        await self._inbox.handle(request, sender, lambda: self._about_received(share, kind, role))

    async def _about_received(self, share: Any, kind: str, role: str | None) -> dict[str, Any]:
        async with self._spaces.transaction() as conn:
            if kind == UNSHARED:
                await self._incoming.unshared(conn, share)
            elif role is not None:
                await self._incoming.role_changed(conn, share, role)
            else:
                raise InvalidShare([("notificationType", f"{kind} is for the sharer")])
        return {}

    async def _received(self, request: Request, body: bytes, provider_id: str) -> tuple[Any, str]:
        """The share we received under `provider_id`, and the domain that signed `request`
        (its sender's: a peer, or a registry open federation let in)."""
        async with self._spaces.transaction() as conn:
            found = await store.incoming_by_provider_id(conn, provider_id)
        refusal: ApiError | None = None
        for share in found:
            try:
                sender = await self._incoming.sender(request, body, share.peer_domain)
            except ApiError as exc:
                refusal = exc
                continue
            return share, sender
        if refusal is not None:
            raise refusal
        raise ShareUnknown(f"no share {provider_id}")

    async def _about_sent(self, share: Any, kind: str) -> dict[str, Any]:
        now = self._clock.now()
        async with self._spaces.transaction() as conn:
            if kind == ACCEPTED:
                await store.set_outgoing(conn, share.id, {"state": store.ACCEPTED}, now)
                return {}
            if kind in PERMISSION_CHANGES:
                raise InvalidShare([("notificationType", f"{kind} is for the recipient")])
            if share.state == store.DECLINED:
                return {}
            await store.set_outgoing(conn, share.id, {"state": store.DECLINED}, now)
            await spaces.delete_member(conn, share.member_id)
            lost = PrincipalKey(REMOTE, share.recipient)
            data = {"principalType": REMOTE, "principalId": share.recipient}
            await changes.append(conn, share.space_id, "member_removed", data, now, lost=[lost])
        return {}
