"""Peering: invite, accept, hold partners and their state, revoke.

zurich's admin creates an invitation (single use, expiring, stored by hash). paris's admin
accepts it: paris discovers zurich by the invitation's domain (DNS, registry metadata, OCM
discovery and its JWKS URI) and sends a signed acceptance naming its own domain to zurich's
`/api/v1/peering/accept`; zurich checks the invitation, discovers paris the same way and
verifies that paris signed with a key it publishes. Both then hold the other as `active`.
Suspending, resuming and revoking tell the partner with a signed notice through the outbox
(kind `peer-notice`); while either side has suspended the other, what we queue for it waits
(its destination is paused), and once revoked it is dropped; both sides refuse the other's
requests (403) meanwhile.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from federation.discovery import DiscoveredPeer, Discovery
from federation.errors import DiscoveryError
from federation.invitations import InvalidInvitation, Invitation, new_invitation, parse_invitation
from federation.keys import SigningKeys
from federation.safe_http import SafeHttpClient
from federation.signing import OcmSignatureAuth
from registry.core.clock import Clock
from registry.core.errors import BadRequest
from registry.core.http import json_object
from registry.outbox import store as outbox
from registry.peers import store
from registry.peers.errors import (
    InvitationExpired,
    InvitationMalformed,
    InvitationUnknown,
    InvitationUsed,
    InvitationWrongDomain,
    OpenFederationOff,
    PeerNotSuspended,
    PeerRefused,
    PeerUnknown,
    PeerUnreachable,
)
from registry.peers.guard import PeerGuard, Transaction, hash_token, peer_domain
from registry.peers.inbox import Inbox

logger = logging.getLogger("spacereg.peers")

DEFAULT_INVITATION_TTL = timedelta(days=7)
ACCEPT_PATH = "/api/v1/peering/accept"
NOTICE_PATH = "/api/v1/peering/notice"
PING_PATH = "/api/v1/peering/ping"


# What other wings drop when a partnership is revoked, in the revoking transaction (the shares
# wing: the peer's subscriptions to our spaces, and ours to its).
Revoked = Callable[[AsyncConnection, str], Awaitable[None]]


@dataclass(frozen=True)
class Issued:
    invitation: Invitation
    expires_at: datetime


class Peering:
    def __init__(
        self,
        transaction: Transaction,
        discovery: Discovery,
        outbound: SafeHttpClient,
        keys: SigningKeys,
        guard: PeerGuard,
        domain: str,
        clock: Clock,
        *,
        open_federation: bool = False,
        wake: Callable[[], None] = lambda: None,
        on_revoked: Revoked,
    ) -> None:
        self._transaction = transaction
        self._discovery = discovery
        self._outbound = outbound
        self._auth = OcmSignatureAuth(keys, clock)
        self.guard = guard
        self.inbox = Inbox(transaction, guard, clock)
        self.domain = domain
        self._clock = clock
        self._open = open_federation
        self._wake = wake  # the delivery worker, to send a queued notice now
        self._on_revoked = on_revoked

    # ---- the inviting side ----

    async def invite(self, created_by: str, ttl: timedelta = DEFAULT_INVITATION_TTL) -> Issued:
        if ttl <= timedelta(0):
            raise InvitationMalformed("an invitation must expire in the future")
        issued = new_invitation(self.domain)
        now = self._clock.now()
        async with self._transaction() as conn:
            await store.add_invitation(conn, hash_token(issued.token), created_by, now, now + ttl)
        return Issued(issued, now + ttl)

    async def receive_acceptance(self, request: Any, body: bytes) -> dict[str, Any]:
        """zurich's side of `POST /api/v1/peering/accept` (`request`: the Starlette request)."""
        doc = json_object(body)
        domain = peer_domain(doc.get("domain"))
        text = doc.get("invitation")
        token_hash = None
        if text is None:
            if not self._open:
                raise OpenFederationOff("this registry peers only by invitation")
        else:
            invitation = self._parse(str(text), ours=True)
            token_hash = hash_token(invitation.token)
            await self._check_unused(token_hash)
        found = await self.discover(domain)
        keys = self.guard.keys_of(domain, found.jwks_url)
        await self.guard.signed_by(request, body, keys)
        now = self._clock.now()
        async with self._transaction() as conn:
            if token_hash is not None and not await store.use_invitation(
                conn, token_hash, domain, now
            ):
                raise InvitationUsed("this invitation was used already")
            record = _record(found, now, contact=now, signed=now)
            await store.save_peer(conn, record, now)
            await self._hold_deliveries(conn, record, now)
        logger.info("peered with %s (it accepted our invitation)", domain)
        return {"domain": self.domain, "state": store.ACTIVE}

    async def _check_unused(self, token_hash: str) -> None:
        async with self._transaction() as conn:
            found = await store.invitation(conn, token_hash)
        if found is None:
            raise InvitationUnknown("no such invitation")
        if found.used_at is not None:
            raise InvitationUsed("this invitation was used already")
        if self._clock.now() >= found.expires_at:
            raise InvitationExpired("this invitation has expired")

    # ---- the accepting side ----

    async def accept(self, text: str | None, domain: str | None = None) -> store.PeerRecord:
        """Accept an invitation (or, with `domain`, ask a registry open to federation)."""
        body: dict[str, Any] = {"domain": self.domain}
        if text is not None:
            invitation = self._parse(text, ours=False)
            domain = invitation.fqdn
            body["invitation"] = text.strip()
        if domain is None:
            raise InvitationMalformed("give an invitation")
        domain = peer_domain(domain)
        found = await self.discover(domain)
        answer = await self.send(found.metadata.base_url + ACCEPT_PATH, body, domain)
        if answer.get("domain") != domain:
            raise PeerUnreachable(f"{domain} answered for {answer.get('domain')!r}")
        now = self._clock.now()
        signed = now if found.ocm.signs_http_sig else None
        record = _record(found, now, contact=now, signed=signed)
        async with self._transaction() as conn:
            await store.save_peer(conn, record, now)
            await self._hold_deliveries(conn, record, now)
            saved = await _shown(conn, found.metadata.domain)
        logger.info("peered with %s (accepted its invitation)", domain)
        assert saved is not None
        return saved

    # ---- both sides ----

    async def list(self) -> list[store.PeerRecord]:
        async with self._transaction() as conn:
            return await store.list_peers(conn)

    async def get(self, domain: str) -> store.PeerRecord:
        async with self._transaction() as conn:
            found = await _shown(conn, domain.lower())
        if found is None:
            raise PeerUnknown(f"no peer {domain}")
        return found

    async def vouched_issuers(self) -> dict[str, tuple[str, ...]]:
        """The OIDC issuers our active partners vouch for, each to the partners' domains."""
        async with self._transaction() as conn:
            return await store.vouched_issuers(conn)

    async def client_origin(self, client_id: str) -> str | None:
        """The origin of the active partner a client id of our IdP names (its domain)."""
        async with self._transaction() as conn:
            return await store.active_origin(conn, client_id)

    async def suspend(self, domain: str) -> store.PeerRecord:
        return await self._change(domain, store.SUSPENDED)

    async def resume(self, domain: str) -> store.PeerRecord:
        peer = await self.get(domain)
        if peer.state != store.SUSPENDED:
            raise PeerNotSuspended(f"{domain} is {peer.state}, not suspended")
        return await self._change(domain, store.ACTIVE)

    async def revoke(self, domain: str) -> store.PeerRecord:
        return await self._change(domain, store.REVOKED)

    async def _change(self, domain: str, state: str) -> store.PeerRecord:
        """Our view of the partnership becomes `state` at once; a signed notice telling the
        partner is queued in the same transaction (sent and retried by `PeerSender`)."""
        now = self._clock.now()
        domain = domain.lower()
        notice = {"domain": self.domain, "state": state}
        async with self._transaction() as conn:
            if not await store.set_state(conn, domain, state, now):
                raise PeerUnknown(f"no peer {domain}")
            peer = await store.find_peer(conn, domain)
            assert peer is not None
            await self._hold_deliveries(conn, peer, now)
            url = peer.base_url + NOTICE_PATH
            kind = outbox.PEER_NOTICE
            await outbox.queue_peer(conn, uuid.uuid4().hex, url, notice, now, kind=kind)
            shown = await _shown(conn, domain)
        self._wake()
        logger.info("the peering with %s is %s; notice queued", domain, state)
        assert shown is not None
        return shown

    async def receive_notice(self, peer: store.PeerRecord, doc: dict[str, Any]) -> dict[str, Any]:
        """The partner revoked, suspended or resumed the partnership: revoked ends it here
        too; suspended holds what we queue for it until it resumes."""
        state = _string(doc, "state")
        if state not in store.STATES:
            raise BadRequest(f"unknown notice state {state!r}")
        now = self._clock.now()
        async with self._transaction() as conn:
            if state == store.REVOKED:
                await store.set_state(conn, peer.domain, store.REVOKED, now)
            else:
                await store.set_partner_state(conn, peer.domain, state)
            changed = await store.find_peer(conn, peer.domain)
            assert changed is not None
            await self._hold_deliveries(conn, changed, now)
        self._wake()
        logger.info("%s says the peering is %s", peer.domain, state)
        return {"domain": self.domain, "state": changed.state}

    async def ping(self, domain: str) -> dict[str, Any]:
        """A signed hello to a peer (it records the contact); its answer, or the refusal."""
        peer = await self.get(domain)
        answer = await self.send(peer.base_url + PING_PATH, {"domain": self.domain}, domain)
        async with self._transaction() as conn:
            await store.contacted(conn, peer.domain, self._clock.now(), signed=False)
        return answer

    async def receive_ping(self, peer: store.PeerRecord, doc: dict[str, Any]) -> dict[str, Any]:
        return {"domain": self.domain, "state": peer.state}

    async def _hold_deliveries(
        self, conn: AsyncConnection, peer: store.PeerRecord, now: datetime
    ) -> None:
        """What we queue for `peer` waits while either side has suspended the other, and is
        dropped once the partnership is revoked (notices about the partnership still go),
        with what other wings hold for it (`on_revoked`)."""
        if peer.state == store.REVOKED:
            await outbox.drop_queued(conn, peer.origin, "the partnership was revoked", now)
            await self._on_revoked(conn, peer.domain)
        held = peer.state != store.ACTIVE or peer.partner_state == store.SUSPENDED
        await outbox.pause(conn, peer.origin, held)

    def _parse(self, text: str, *, ours: bool) -> Invitation:
        try:
            invitation = parse_invitation(text)
        except InvalidInvitation as exc:
            raise InvitationMalformed(str(exc)) from exc
        if (invitation.fqdn == self.domain) != ours:
            where = "another registry" if ours else "this registry itself"
            raise InvitationWrongDomain(f"the invitation is for {where} ({invitation.fqdn})")
        return invitation

    async def discover(self, domain: str) -> DiscoveredPeer:
        """The registry at `domain`, or PeerUnreachable."""
        try:
            return await self._discovery.discover_domain(domain)
        except DiscoveryError as exc:
            raise PeerUnreachable(f"cannot discover {domain}: {exc} [{exc.code}]") from exc

    async def send(self, url: str, doc: dict[str, Any], domain: str) -> dict[str, Any]:
        """POST `doc` to a partner's `url`, signed; its JSON answer, or PeerRefused (with the
        partner's code and 4xx status) or PeerUnreachable."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        try:
            answer = await self._outbound.exchange(
                url, orjson.dumps(doc), headers, what="peering request", auth=self._auth
            )
            body = answer.json_object("peering answer")
        except DiscoveryError as exc:
            raise PeerUnreachable(f"{domain}: {exc} [{exc.code}]") from exc
        if 200 <= answer.status < 300:
            return body
        error = answer.error()
        code = str(error.get("code", "peer_refused"))
        message = f"{domain} refused: {error.get('message', answer.status)}"
        raise PeerRefused(message, code, answer.status)


def _record(
    found: DiscoveredPeer, now: datetime, *, contact: datetime, signed: datetime | None
) -> store.PeerRecord:
    meta = found.metadata
    capabilities = tuple(dict.fromkeys(meta.capabilities + found.ocm.capabilities))
    record = store.PeerRecord(
        meta.domain, meta.base_url, found.jwks_url, meta.issuers, capabilities, store.ACTIVE, now
    )
    return replace(record, last_contact_at=contact, signed_at=signed)


def _string(doc: dict[str, Any], name: str) -> str:
    value = doc.get(name)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"'{name}' is required (a string)")
    return value


async def _shown(conn: AsyncConnection, domain: str) -> store.PeerRecord | None:
    """The peer as an administrator sees it: with its delivery backlog."""
    found = await store.list_peers(conn, domain)
    return found[0] if found else None
