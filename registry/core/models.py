"""The registry's tables. Migrations in `migrations/` create exactly these."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a real BIGINT.
BigId = BigInteger().with_variant(Integer, "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """A moment, stored in UTC and read back with its time zone. SQLite keeps no offset: it
    would drop a non-UTC one on write and hand back naive values on read."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is not None:
            return value
        return value.replace(tzinfo=UTC)


NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def table(model: type[Base]) -> Table:
    """The Core table of a model, typed for insert/update/delete statements."""
    return model.__table__  # type: ignore[return-value]


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


class Space(Base):
    __tablename__ = "spaces"

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
    holds the authorization request in flight (`login_state`, `code_verifier`, `next_path`);
    after, the user it acts for. Every replica reads the same rows."""

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
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


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
    # accepted: when we next renew our subscription to the share's changes at the peer
    renew_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
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
