"""Partner registries, invitations, the shared replay cache and the idempotent inbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from registry.core.models.base import Base, UtcDateTime


class Peer(Base):
    """Another registry we federate with (filled by peering). `status` is its state:
    `active`, `suspended`, `revoked`; `partner_state` what the partner told us of its view
    (`suspended`: it suspended us, so we send it nothing); `info` holds the issuers it
    vouches for and its capabilities (from its metadata); `signed_at`, once set, pins it:
    its unsigned requests are refused from then on."""

    __tablename__ = "peers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    domain: Mapped[str] = mapped_column(String(255), unique=True)
    base_url: Mapped[str] = mapped_column(String(512))
    issuer: Mapped[str | None] = mapped_column(String(512))
    jwks_url: Mapped[str | None] = mapped_column(String(512))
    status: Mapped[str] = mapped_column(String(16), default="active")
    info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_contact_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    signed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    partner_state: Mapped[str] = mapped_column(String(16), default="active")


class PeerInvitation(Base):
    """An invitation to peer with us, by SHA-256 of its token only; single use, expiring."""

    __tablename__ = "peer_invitations"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    used_by: Mapped[str | None] = mapped_column(String(255))


class SignatureReplay(Base):
    """Signatures of peers' requests already accepted, until they expire (shared by replicas)."""

    __tablename__ = "signature_replays"

    signature_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    until: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class InboxMessage(Base):
    """A message a peer sent us, by its id, with the answer we gave (kept at least a day), so
    a repeat is answered alike without being handled again. `status` is None while a replica
    is handling it."""

    __tablename__ = "peer_inbox"

    peer: Mapped[str] = mapped_column(String(255), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    status: Mapped[int | None] = mapped_column(Integer)
    answer: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
