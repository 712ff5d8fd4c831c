"""Remote subscriptions: our one subscription per (peer, remote space), renewed once however
many of our users accepted a share of the space, with the lease the peer holds it by
(replaces the renewal time each accepted share kept)

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 14:00:00.000000
"""

import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

LEASE = timedelta(hours=1)  # registry.shares.subscriptions.LEASE when this was written

incoming = sa.table(
    "incoming_shares",
    sa.column("peer_domain", sa.String),
    sa.column("webdav_uri", sa.String),
    sa.column("state", sa.String),
    sa.column("renew_at", sa.DateTime(timezone=True)),
)
remote = sa.table(
    "remote_subscriptions",
    sa.column("id", sa.String),
    sa.column("peer_domain", sa.String),
    sa.column("webdav_uri", sa.String),
    sa.column("renew_at", sa.DateTime(timezone=True)),
    sa.column("lease_until", sa.DateTime(timezone=True)),
    sa.column("lapsed", sa.Boolean),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    op.create_table(
        "remote_subscriptions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("peer_domain", sa.String(length=255), nullable=False),
        sa.Column("webdav_uri", sa.String(length=1024), nullable=False),
        sa.Column("renew_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("renewal_id", sa.String(length=255), nullable=True),
        sa.Column("lapsed", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_remote_subscriptions")),
        sa.UniqueConstraint(
            "peer_domain",
            "webdav_uri",
            name=op.f("uq_remote_subscriptions_peer_domain_webdav_uri"),
        ),
    )
    with op.batch_alter_table("remote_subscriptions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_remote_subscriptions_renew_at"), ["renew_at"], unique=False
        )
    _subscriptions_of_accepted_shares()
    with op.batch_alter_table("incoming_shares", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_incoming_shares_renew_at"))
        batch_op.drop_column("renew_at")


def _subscriptions_of_accepted_shares() -> None:
    """One row per (peer, remote space) of the accepted shares, renewed when the first of
    them was due (a subscription is renewed halfway through its lease)."""
    bind = op.get_bind()
    now = datetime.now(UTC)
    due: dict[tuple[str, str], datetime] = {}
    found = sa.select(incoming.c.peer_domain, incoming.c.webdav_uri, incoming.c.renew_at).where(
        incoming.c.state == "accepted"
    )
    for peer_domain, webdav_uri, renew_at in bind.execute(found):
        when = _utc(renew_at) if renew_at is not None else now
        key = (peer_domain, webdav_uri)
        due[key] = min(due.get(key, when), when)
    rows = [
        {
            "id": uuid.uuid4().hex,
            "peer_domain": peer_domain,
            "webdav_uri": webdav_uri,
            "renew_at": when,
            "lease_until": when + LEASE / 2,
            "lapsed": False,
            "created_at": now,
            "updated_at": now,
        }
        for (peer_domain, webdav_uri), when in due.items()
    ]
    if rows:
        bind.execute(remote.insert(), rows)


def _utc(moment: datetime) -> datetime:
    """SQLite hands back moments without their offset (stored in UTC)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def downgrade() -> None:
    with op.batch_alter_table("incoming_shares", schema=None) as batch_op:
        batch_op.add_column(sa.Column("renew_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_incoming_shares_renew_at"), ["renew_at"], unique=False)
    bind = op.get_bind()
    for row in bind.execute(sa.select(remote)):
        bind.execute(
            sa.update(incoming)
            .where(
                incoming.c.peer_domain == row.peer_domain,
                incoming.c.webdav_uri == row.webdav_uri,
                incoming.c.state == "accepted",
            )
            .values(renew_at=row.renew_at)
        )
    with op.batch_alter_table("remote_subscriptions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_remote_subscriptions_renew_at"))
    op.drop_table("remote_subscriptions")
