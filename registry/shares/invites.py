"""OCM user invitations, both ways, so that servers that share only with users who accepted
an invitation (Reva and oCIS announce `must-invite`) can share with ours and ours with theirs.

Our user makes an invitation (`base64url(token@our-domain)`, single use, expiring, stored by
hash) and hands it to someone at another server; that server, once its user accepts, tells us
with `POST /ocm/invite-accepted` (signed by it, a peer of ours) and learns who invited them.
The other way round our user accepts an invitation from someone at another server: we send
that server the same message, signed, and answer with whom it made our user a contact of.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request

from federation.invitations import InvalidInvitation, new_invitation, parse_invitation
from registry.access.principal import Principal
from registry.auth.user_store import email_of
from registry.core.clock import Clock
from registry.core.errors import BadRequest, Conflict
from registry.core.http import json_object
from registry.core.models import OcmInvitation, User, table
from registry.peers.errors import PeerUnreachable
from registry.peers.guard import hash_token
from registry.peers.service import Peering
from registry.shares.errors import InvalidShare
from registry.spaces.service import SpaceService

invitations = table(OcmInvitation)
users = table(User)

INVITE_ACCEPTED_PATH = "/ocm/invite-accepted"
INVITATION_TTL = timedelta(days=7)
FIELDS = ("recipientProvider", "token", "userID", "email", "name")


class InvitationRefused(BadRequest):
    code = "invitation_refused"


class InvitationTaken(Conflict):
    code = "invitation_used"


class OcmInvites:
    def __init__(self, spaces_service: SpaceService, peering: Peering, clock: Clock) -> None:
        self._spaces = spaces_service
        self._peering = peering
        self._guard = peering.guard
        self._domain = peering.domain
        self._clock = clock

    async def invite(self, principal: Principal) -> dict[str, Any]:
        issued = new_invitation(self._domain)
        now = self._clock.now()
        async with self._spaces.transaction() as conn:
            await conn.execute(
                invitations.insert().values(
                    token_hash=hash_token(issued.token),
                    user_id=principal.user_id,
                    created_at=now,
                    expires_at=now + INVITATION_TTL,
                )
            )
        return {
            "invitation": str(issued),
            "token": issued.token,
            "providerDomain": self._domain,
            "expiresAt": (now + INVITATION_TTL).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }

    async def accepted(self, request: Request, body: bytes) -> dict[str, Any]:
        """`POST /ocm/invite-accepted` from the server of the one who took our invitation."""
        doc = json_object(body)
        missing = [name for name in FIELDS if not _text(doc.get(name))]
        if missing:
            raise InvalidShare([(name, "a string is required") for name in missing])
        provider = str(doc["recipientProvider"]).strip().lower()
        peer = await self._guard.check(request, body, provider)
        return await self._peering.inbox.handle(
            request, peer.domain, lambda: self._accepted(doc, provider)
        )

    async def _accepted(self, doc: dict[str, Any], provider: str) -> dict[str, Any]:
        now = self._clock.now()
        async with self._spaces.transaction() as conn:
            found = await _invitation(conn, hash_token(str(doc["token"])))
            if found is None or found.expires_at <= now:
                raise InvitationRefused("no such invitation, or it expired")
            if found.accepted_at is not None:
                raise InvitationTaken("this invitation was accepted already")
            contact = f"{doc['userID']}@{provider}"
            await conn.execute(
                update(invitations)
                .where(invitations.c.token_hash == found.token_hash)
                .values(accepted_at=now, accepted_by=contact[:255])
            )
            inviter = (await conn.execute(select(users).where(users.c.id == found.user_id))).first()
        assert inviter is not None  # its invitations go with it
        return {
            "userID": inviter.username,
            "email": inviter.email or "",
            "name": inviter.display_name,
        }

    async def accept(self, principal: Principal, text: str) -> dict[str, Any]:
        """Our user takes an invitation from someone at another server: tell that server."""
        try:
            invitation = parse_invitation(text)
        except InvalidInvitation as exc:
            raise InvitationRefused(str(exc)) from exc
        found = await self._peering.discover(invitation.fqdn)
        async with self._spaces.transaction() as conn:
            email = await email_of(conn, principal.user_id)
        message = {
            "recipientProvider": self._domain,
            "token": invitation.token,
            "userID": principal.username,
            "email": email or "",
            "name": principal.display_name,
        }
        url = found.ocm.end_point + INVITE_ACCEPTED_PATH.removeprefix("/ocm")
        doc = await self._peering.send(url, message, invitation.fqdn)
        if not _text(doc.get("userID")):
            raise PeerUnreachable(f"{invitation.fqdn} answered without a userID")
        return {
            "userID": doc["userID"],
            "email": doc.get("email", ""),
            "name": doc.get("name", doc["userID"]),
            "address": f"{doc['userID']}@{invitation.fqdn}",
        }


async def _invitation(conn: AsyncConnection, token_hash: str) -> Any:
    found = select(invitations).where(invitations.c.token_hash == token_hash).with_for_update()
    return (await conn.execute(found)).first()


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip()) and len(value) <= 255
