"""Share subscriptions: a peer's lease on the changes of a space we share with its users,
and when we renew ours for a share we accepted

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 12:50:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "share_subscriptions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("space_id", sa.String(length=64), nullable=False),
        sa.Column("peer_domain", sa.String(length=255), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_share_subscriptions")),
        sa.UniqueConstraint(
            "space_id", "peer_domain", name=op.f("uq_share_subscriptions_space_id_peer_domain")
        ),
    )
    with op.batch_alter_table("share_subscriptions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_share_subscriptions_expires_at"), ["expires_at"], unique=False
        )
    with op.batch_alter_table("incoming_shares", schema=None) as batch_op:
        batch_op.add_column(sa.Column("renew_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_incoming_shares_renew_at"), ["renew_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("incoming_shares", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_incoming_shares_renew_at"))
        batch_op.drop_column("renew_at")
    with op.batch_alter_table("share_subscriptions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_share_subscriptions_expires_at"))
    op.drop_table("share_subscriptions")
