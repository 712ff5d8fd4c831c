"""What the gateway keeps for every storage: WebDAV locks, dead properties, chunked uploads."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from registry.core.models.base import Base, UtcDateTime


class DavLock(Base):
    """A WebDAV lock on a path of a space (RFC 4918 class 2), kept here rather than by the
    storage so that every replica and every kind of provider enforces the same locks."""

    __tablename__ = "dav_locks"
    __table_args__ = (Index("ix_dav_locks_space_path", "space_id", "path"),)

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    space_id: Mapped[str] = mapped_column(ForeignKey("spaces.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(Text)
    depth: Mapped[str] = mapped_column(String(8))  # "0" or "infinity"
    scope: Mapped[str] = mapped_column(String(16))  # "exclusive" or "shared"
    owner: Mapped[str] = mapped_column(Text, default="")  # the client's DAV:owner, as XML
    principal: Mapped[str] = mapped_column(String(255))
    timeout_seconds: Mapped[int | None] = mapped_column(Integer)  # None: infinite
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class DavProperty(Base):
    """A dead property (PROPPATCH) of a path in a space: `name` in Clark notation
    (`{namespace}local`), `value` the property element as XML."""

    __tablename__ = "dav_properties"

    space_id: Mapped[str] = mapped_column(
        ForeignKey("spaces.id", ondelete="CASCADE"), primary_key=True
    )
    path: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(String(1024), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class DavUpload(Base):
    """A chunked upload in progress: its chunks wait here, invisible in the space, until the
    last one (OC-Chunked v1) or the final MOVE (chunking NG) writes the file in one PUT."""

    __tablename__ = "dav_uploads"
    __table_args__ = (UniqueConstraint("owner", "key"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(255))
    key: Mapped[str] = mapped_column(String(512))  # the client's name for the upload
    space_id: Mapped[str | None] = mapped_column(ForeignKey("spaces.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class DavUploadChunk(Base):
    __tablename__ = "dav_upload_chunks"

    upload_id: Mapped[str] = mapped_column(
        ForeignKey("dav_uploads.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[bytes] = mapped_column(LargeBinary)
