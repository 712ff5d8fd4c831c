"""Cross-domain shares both ways, their tokens and subscriptions, and OCM user invitations."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from registry.core.models.base import Base, UtcDateTime


class OutgoingShare(Base):
    """A share we sent to a peer's user (`recipient`, an OCM address): the space it grants
    (a share space for a folder, or the whole space), its role, its state as the recipient's
    registry told us (`delivering`, `pending`, `accepted`, `declined`), and the SHA-256 of
    the secret that the recipient's registry exchanges for access tokens."""

    __tablename__ = "outgoing_shares"
    __table_args__ = (UniqueConstraint("source_space_id", "path", "recipient"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # No foreign keys: a share outlives its space for as long as it takes to tell the peer
    # that the space was purged (the shares wing's fan-out does, and then removes it).
    space_id: Mapped[str] = mapped_column(String(64), index=True)
    source_space_id: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(1024))
    recipient: Mapped[str] = mapped_column(String(255))
    peer_domain: Mapped[str] = mapped_column(String(255))
    ocm_endpoint: Mapped[str] = mapped_column(String(1024))
    member_id: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class IncomingShare(Base):
    """A share a peer sent to one of our users (`user_id`): pending until they accept (then
    `mountpoint_id` is the space that shows it) or decline. `secret` is the peer's shared
    secret, needed to exchange for access tokens and to sign our notifications to it."""

    __tablename__ = "incoming_shares"
    __table_args__ = (
        UniqueConstraint("provider_id", "sender"),
        Index("ix_incoming_shares_user", "user_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    provider_id: Mapped[str] = mapped_column(String(255))
    sender: Mapped[str] = mapped_column(String(255))
    owner: Mapped[str] = mapped_column(String(255))
    sender_name: Mapped[str] = mapped_column(String(255))
    owner_name: Mapped[str] = mapped_column(String(255))
    peer_domain: Mapped[str] = mapped_column(String(255))
    ocm_endpoint: Mapped[str] = mapped_column(String(1024))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    resource_type: Mapped[str] = mapped_column(String(16))
    role: Mapped[str] = mapped_column(String(16))
    webdav_uri: Mapped[str] = mapped_column(String(1024))
    secret: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16))
    mountpoint_id: Mapped[str | None] = mapped_column(ForeignKey("spaces.id", ondelete="SET NULL"))
    # accepted: the peer's subscription whose change messages we apply, and the `seq` of the
    # last one applied (a gap, or another subscription, makes us re-read the share's state)
    change_subscription: Mapped[str | None] = mapped_column(String(64))
    change_seq: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ShareToken(Base):
    """A short-lived access token to one share, by SHA-256 only: what the recipient's
    registry got for the share's secret at our token endpoint (OCM's code flow)."""

    __tablename__ = "share_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    share_id: Mapped[str] = mapped_column(
        ForeignKey("outgoing_shares.id", ondelete="CASCADE"), index=True
    )
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class ShareSubscription(Base):
    """A peer's subscription to the changes of a space we share with its users: one per
    (space, peer) however many of its users received it, alive until `expires_at` unless the
    peer renews it. `seq` numbers the messages sent under it, so the peer sees a gap."""

    __tablename__ = "share_subscriptions"
    __table_args__ = (UniqueConstraint("space_id", "peer_domain"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    space_id: Mapped[str] = mapped_column(String(64))
    peer_domain: Mapped[str] = mapped_column(String(255))
    seq: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class RemoteSubscription(Base):
    """Our subscription at a peer to the changes of one of its spaces (`webdav_uri` names
    it), one however many of our users accepted a share of it: renewed at `renew_at`; the
    peer holds it, as far as we know, until `lease_until`, moved on when a renewal's delivery
    (`renewal_id`, its outbox event id) is confirmed. `lapsed`: the lease ran out without
    one, and the space's mountpoints were marked unavailable."""

    __tablename__ = "remote_subscriptions"
    __table_args__ = (UniqueConstraint("peer_domain", "webdav_uri"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    peer_domain: Mapped[str] = mapped_column(String(255))
    webdav_uri: Mapped[str] = mapped_column(String(1024))
    renew_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    lease_until: Mapped[datetime] = mapped_column(UtcDateTime)
    renewal_id: Mapped[str | None] = mapped_column(String(255))
    lapsed: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class OcmInvitation(Base):
    """An OCM invitation one of our users made for someone at another server, by SHA-256 of
    its token only; single use (`accepted_by`: who took it, `user@their-domain`), expiring."""

    __tablename__ = "ocm_invitations"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    accepted_by: Mapped[str | None] = mapped_column(String(255))
