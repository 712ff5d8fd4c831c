"""Who may sign in and how: users, the embedded IdP's grants, throttled failures, web
sessions and app passwords."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from registry.core.models.base import Base, UtcDateTime


class User(Base):
    """A person as one trusted issuer knows them; `id` is ours and stable."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("issuer", "subject"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    issuer: Mapped[str] = mapped_column(String(512))
    subject: Mapped[str] = mapped_column(String(255))
    username: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class IdpGrant(Base):
    """Authorization codes and refresh tokens of the embedded IdP, stored by hash only."""

    __tablename__ = "idp_grants"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    username: Mapped[str] = mapped_column(String(255))
    client_id: Mapped[str] = mapped_column(String(255))
    redirect_uri: Mapped[str | None] = mapped_column(String(1024))
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    scope: Mapped[str] = mapped_column(String(512), default="")
    nonce: Mapped[str | None] = mapped_column(String(255))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class LoginFailure(Base):
    """Failed sign-ins in a row at the embedded IdP, per username (by digest) or client address,
    shared by every replica; attempts are refused until `locked_until`."""

    __tablename__ = "login_failures"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_failure_at: Mapped[datetime] = mapped_column(UtcDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime)


class WebSession(Base):
    """A browser's session with the web UI, by SHA-256 of its cookie only. Before login it
    holds the authorization request in flight (`login_state`, `code_verifier`, `next_path`;
    at a partner's issuer also `login_issuer` and `login_nonce`); after, the user it acts
    for (a partner's user by `remote`, their address). Every replica reads the same rows."""

    __tablename__ = "web_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str | None] = mapped_column(String(64))
    username: Mapped[str | None] = mapped_column(String(255))
    display_name: Mapped[str | None] = mapped_column(String(255))
    groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    login_state: Mapped[str | None] = mapped_column(String(64))
    code_verifier: Mapped[str | None] = mapped_column(String(128))
    next_path: Mapped[str | None] = mapped_column(Text)
    remote: Mapped[str | None] = mapped_column(String(512))
    login_issuer: Mapped[str | None] = mapped_column(String(1024))
    login_nonce: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class AppPassword(Base):
    """A password a user made for a client that cannot sign in with OpenID Connect (a desktop
    client, rclone, a mounted drive): usable for WebDAV and the client endpoints only. `id` is
    the password's first characters, by which it is found; `digest` is scrypt of the rest."""

    __tablename__ = "app_passwords"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(200))
    digest: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
