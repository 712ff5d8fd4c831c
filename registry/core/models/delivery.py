"""Webhook subscriptions and the durable outbox with its per-destination state."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from registry.core.models.base import Base, BigId, UtcDateTime


class Subscription(Base):
    """A webhook: changes to the owner's spaces (all, or the listed ones) POSTed to a callback."""

    __tablename__ = "subscriptions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    owner_groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    callback_url: Mapped[str] = mapped_column(String(1024))
    secret: Mapped[str] = mapped_column(String(255))
    all_drives: Mapped[bool] = mapped_column(Boolean)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class SubscriptionDrive(Base):
    __tablename__ = "subscription_drives"

    subscription_id: Mapped[str] = mapped_column(
        ForeignKey("subscriptions.id", ondelete="CASCADE"), primary_key=True
    )
    space_id: Mapped[str] = mapped_column(
        ForeignKey("spaces.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class OutboxEntry(Base):
    """A delivery to send, written with the change that caused it: `kind` names the sender
    (`webhook`: to a subscription's callback; `peer`: to another registry), `destination` the
    URL and `origin` the server whose backoff it shares (`destinations`). `claimed_until` lets
    one replica send it while the others skip it."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "state", "next_attempt_at"),
        UniqueConstraint("subscription_id", "event_id"),
        # A message to a peer is queued once: queuing it again is a no-op.
        Index(
            "ux_outbox_message",
            "kind",
            "destination",
            "event_id",
            unique=True,
            sqlite_where=text("subscription_id IS NULL"),
            postgresql_where=text("subscription_id IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(String(64))
    subscription_id: Mapped[str | None] = mapped_column(
        ForeignKey("subscriptions.id", ondelete="CASCADE")
    )
    destination: Mapped[str] = mapped_column(String(1024))
    origin: Mapped[str] = mapped_column(String(512))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    claimed_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Destination(Base):
    """Backoff per receiving server (scheme://host:port), kept across restarts. Its circuit
    is open from `opened_at` (failures in a row reached the threshold) until one probe
    succeeds; `probe_until` is the lease of the one probe in flight. `paused` holds its peer
    messages (the partner suspended us, or we it) without counting failures."""

    __tablename__ = "destinations"

    origin: Mapped[str] = mapped_column(String(512), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    retry_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    opened_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    probe_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
