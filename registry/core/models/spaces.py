"""Spaces, their members, and the change log with its audiences and horizon."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from registry.core.models.base import Base, BigId, UtcDateTime


def _set_only(column: str) -> Index:
    """An index of the rows where `column` is set (migration 0017 says why partial)."""
    where = text(f"{column} IS NOT NULL")
    return Index(f"ix_spaces_{column}", column, sqlite_where=where, postgresql_where=where)


class Space(Base):
    __tablename__ = "spaces"
    __table_args__ = (_set_only("parent_id"), _set_only("remote_peer_id"))

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    alias: Mapped[str] = mapped_column(String(300), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    drive_type: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(64))
    root_id: Mapped[str] = mapped_column(String(200))
    etag: Mapped[str] = mapped_column(String(100))
    quota_total: Mapped[int | None] = mapped_column(BigInteger)
    quota_used: Mapped[int] = mapped_column(BigInteger, default=0)
    image: Mapped[str | None] = mapped_column(String(1024))
    readme: Mapped[str | None] = mapped_column(String(1024))
    status: Mapped[str] = mapped_column(String(16), default="enabled")
    # Set for mountpoints of spaces held by a peer: where the files are and whether we reach them.
    remote_peer_id: Mapped[str | None] = mapped_column(ForeignKey("peers.id", ondelete="CASCADE"))
    remote_url: Mapped[str | None] = mapped_column(String(1024))
    availability: Mapped[str] = mapped_column(String(16), default="available")
    # Set for share spaces: the space holding the shared folder, and the folder's path in it.
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("spaces.id", ondelete="CASCADE"))
    parent_path: Mapped[str | None] = mapped_column(String(1024))
    created_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # Grows with every change to what the space's drive JSON shows: the row, its members, their
    # display names. Triggers of migration 0015 raise it in the changing transaction, whatever
    # code writes; the listing reads it to know whether an encoded drive is still current.
    version: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class Member(Base):
    """A role held on a space by a user (our user id) or a group (its name in the token claim)."""

    __tablename__ = "members"
    __table_args__ = (
        UniqueConstraint("space_id", "principal_type", "principal_id"),
        Index("ix_members_principal", "principal_type", "principal_id", "space_id"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    space_id: Mapped[str] = mapped_column(ForeignKey("spaces.id", ondelete="CASCADE"))
    principal_type: Mapped[str] = mapped_column(String(8))
    principal_id: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ListingVersion(Base):
    """Grows with every change to what a principal's listing of held drives shows: a space it
    holds a role in changed, it gained or lost a role, or (a user) a share reached it or
    changed. Triggers of migration 0016 raise it as the changing transaction commits; a
    replica's listing reads it to know whether the page it answered last is still current.
    No row: 0."""

    __tablename__ = "listing_versions"

    principal_type: Mapped[str] = mapped_column(String(8), primary_key=True)
    principal_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)


class ChangeRecord(Base):
    """The ordered log of changes to spaces; `seq` is the cursor clients resume from."""

    __tablename__ = "changes"
    __table_args__ = (Index("ix_changes_space_seq", "space_id", "seq"),)

    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    space_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ChangeAudience(Base):
    """Who must still hear of a change although they can no longer see the space: a removed
    member, or every member of a deleted space."""

    __tablename__ = "change_audience"
    __table_args__ = (
        Index("ix_change_audience_principal", "principal_type", "principal_id", "seq"),
    )

    seq: Mapped[int] = mapped_column(
        BigId, ForeignKey("changes.seq", ondelete="CASCADE"), primary_key=True
    )
    principal_type: Mapped[str] = mapped_column(String(8), primary_key=True)
    principal_id: Mapped[str] = mapped_column(String(255), primary_key=True)


class LogHorizon(Base):
    """How far a log has been pruned: cursors at or below `pruned_through` are too old."""

    __tablename__ = "log_horizon"

    log: Mapped[str] = mapped_column(String(32), primary_key=True)
    pruned_through: Mapped[int] = mapped_column(BigInteger)
