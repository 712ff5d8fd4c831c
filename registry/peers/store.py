"""Peering's SQL: invitations (by hash), peers and their state, the shared replay cache.
Each function takes the connection of its caller's transaction and `now` from its caller."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from registry.core.models import (
    Peer,
    PeerInvitation,
    SignatureReplay,
    table,
)
from registry.core.unique import insert_once
from registry.outbox import store as outbox

peers = table(Peer)
invitations = table(PeerInvitation)
replays = table(SignatureReplay)

# No `pending`: a peer is saved only once its keys are verified (the acceptance is signed and
# answered in one exchange), so nothing sits between acceptance and verified keys.
ACTIVE, SUSPENDED, REVOKED = "active", "suspended", "revoked"
STATES = (ACTIVE, SUSPENDED, REVOKED)
NO_BACKLOG = outbox.Backlog()


@dataclass(frozen=True)
class PeerRecord:
    domain: str
    base_url: str
    jwks_url: str
    issuers: tuple[str, ...]
    capabilities: tuple[str, ...]
    state: str
    created_at: datetime
    updated_at: datetime | None = None
    last_contact_at: datetime | None = None
    signed_at: datetime | None = None
    # what the partner told us of its view: `suspended` when it suspended us
    partner_state: str = ACTIVE
    delivery: outbox.Backlog = NO_BACKLOG

    @property
    def origin(self) -> str:
        return outbox.origin_of(self.base_url)

    def to_json(self) -> dict[str, Any]:
        def when(moment: datetime | None) -> str | None:
            return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")

        return {
            "domain": self.domain,
            "state": self.state,
            "baseUrl": self.base_url,
            "jwksUrl": self.jwks_url,
            "issuers": list(self.issuers),
            "capabilities": list(self.capabilities),
            "createdAt": when(self.created_at),
            "lastContact": when(self.last_contact_at),
            "pinned": self.signed_at is not None,
            "partnerState": self.partner_state,
            "queuedDeliveries": self.delivery.queued,
            "failures": self.delivery.failures,
            "circuitOpen": self.delivery.circuit_open,
            "nextAttempt": when(self.delivery.retry_at),
            "lastError": self.delivery.last_error,
        }


@dataclass(frozen=True)
class InvitationRecord:
    expires_at: datetime
    used_at: datetime | None
    used_by: str | None


async def add_invitation(
    conn: AsyncConnection, token_hash: str, created_by: str, now: datetime, expires_at: datetime
) -> None:
    await conn.execute(
        insert(invitations).values(
            token_hash=token_hash, created_by=created_by, created_at=now, expires_at=expires_at
        )
    )


async def invitation(conn: AsyncConnection, token_hash: str) -> InvitationRecord | None:
    row = (
        await conn.execute(select(invitations).where(invitations.c.token_hash == token_hash))
    ).first()
    return None if row is None else InvitationRecord(row.expires_at, row.used_at, row.used_by)


async def use_invitation(
    conn: AsyncConnection, token_hash: str, domain: str, now: datetime
) -> bool:
    """Mark it used by `domain`; False if someone used it first (single use, even racing)."""
    done = await conn.execute(
        update(invitations)
        .where(invitations.c.token_hash == token_hash, invitations.c.used_at.is_(None))
        .values(used_at=now, used_by=domain)
    )
    return done.rowcount == 1


async def save_peer(conn: AsyncConnection, peer: PeerRecord, now: datetime) -> None:
    """Insert the peer, or refresh what discovery found and its state (a peer peering again)."""
    values: dict[str, Any] = {
        "base_url": peer.base_url,
        "jwks_url": peer.jwks_url,
        "issuer": peer.issuers[0] if peer.issuers else None,
        "status": peer.state,
        "info": {"issuers": list(peer.issuers), "capabilities": list(peer.capabilities)},
        "updated_at": now,
        "last_contact_at": peer.last_contact_at,
        "signed_at": peer.signed_at,
        "partner_state": peer.partner_state,
    }
    found = await conn.execute(update(peers).where(peers.c.domain == peer.domain).values(values))
    if found.rowcount == 0:
        await conn.execute(
            insert(peers).values(id=uuid.uuid4().hex, domain=peer.domain, created_at=now, **values)
        )


async def find_peer(conn: AsyncConnection, domain: str) -> PeerRecord | None:
    """The peer as recorded (without its delivery backlog: the guard asks on every request)."""
    row = (await conn.execute(select(peers).where(peers.c.domain == domain))).first()
    return None if row is None else _record(row)


async def list_peers(conn: AsyncConnection, domain: str | None = None) -> list[PeerRecord]:
    """Peers (or the one of `domain`) with their deliveries queued and failures in a row."""
    query = select(peers).order_by(peers.c.domain)
    if domain is not None:
        query = query.where(peers.c.domain == domain)
    records = [_record(row) for row in (await conn.execute(query)).all()]
    backlog = await outbox.backlog(conn, {record.origin for record in records})
    return [replace(record, delivery=backlog[record.origin]) for record in records]


async def vouched_issuers(conn: AsyncConnection) -> dict[str, tuple[str, ...]]:
    """The OpenID Connect issuers our active partners vouch for (from their discovery), each
    to the domains of the partners vouching for it (several, when organisations share an
    IdP): a partner's user logging in here shows a token of one of them."""
    query = select(peers.c.domain, peers.c.info).where(peers.c.status == ACTIVE)
    vouched: dict[str, list[str]] = {}
    for row in await conn.execute(query.order_by(peers.c.domain)):
        for issuer in (row.info or {}).get("issuers", ()):
            if isinstance(issuer, str):
                vouched.setdefault(issuer, []).append(row.domain)
    return {issuer: tuple(domains) for issuer, domains in vouched.items()}


async def active_origin(conn: AsyncConnection, domain: str) -> str | None:
    """The origin of the active partner at `domain` (where its web UI receives logins)."""
    row = (
        await conn.execute(
            select(peers.c.base_url).where(peers.c.domain == domain, peers.c.status == ACTIVE)
        )
    ).first()
    return None if row is None else outbox.origin_of(row.base_url)


def _record(row: Any) -> PeerRecord:
    info = row.info or {}
    return PeerRecord(
        row.domain,
        row.base_url,
        row.jwks_url or "",
        tuple(info.get("issuers", ())),
        tuple(info.get("capabilities", ())),
        row.status,
        row.created_at,
        row.updated_at,
        row.last_contact_at,
        row.signed_at,
        row.partner_state,
    )


async def set_state(conn: AsyncConnection, domain: str, state: str, now: datetime) -> bool:
    done = await conn.execute(
        update(peers).where(peers.c.domain == domain).values(status=state, updated_at=now)
    )
    return done.rowcount == 1


async def set_partner_state(conn: AsyncConnection, domain: str, state: str) -> None:
    await conn.execute(update(peers).where(peers.c.domain == domain).values(partner_state=state))


async def contacted(conn: AsyncConnection, domain: str, now: datetime, *, signed: bool) -> None:
    """We heard from the peer (its request, or its answer); a signed request of its own pins
    it (its unsigned ones are refused after)."""
    values: dict[str, Any] = {"last_contact_at": now}
    await conn.execute(update(peers).where(peers.c.domain == domain).values(values))
    if signed:
        await conn.execute(
            update(peers)
            .where(peers.c.domain == domain, peers.c.signed_at.is_(None))
            .values(signed_at=now)
        )


async def first_use(
    conn: AsyncConnection, signature_id: str, until: datetime, now: datetime
) -> bool:
    """Record a signature as used until `until`, forgetting those past theirs; False if it
    was recorded already (the primary key makes this atomic across replicas)."""
    await conn.execute(delete(replays).where(replays.c.until < now))
    return await insert_once(conn, replays, {"signature_id": signature_id, "until": until})
