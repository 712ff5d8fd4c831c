"""change feed, webhooks and delivery outbox

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 11:53:23.171467
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "destinations",
        sa.Column("origin", sa.String(length=512), nullable=False, server_default=""),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("origin", name=op.f("pk_destinations")),
    )
    op.create_table(
        "log_horizon",
        sa.Column("log", sa.String(length=32), nullable=False),
        sa.Column("pruned_through", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("log", name=op.f("pk_log_horizon")),
    )
    op.create_table(
        "change_audience",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("principal_type", sa.String(length=8), nullable=False),
        sa.Column("principal_id", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["seq"],
            ["changes.seq"],
            name=op.f("fk_change_audience_seq_changes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "seq", "principal_type", "principal_id", name=op.f("pk_change_audience")
        ),
    )
    with op.batch_alter_table("change_audience", schema=None) as batch_op:
        batch_op.create_index(
            "ix_change_audience_principal", ["principal_type", "principal_id", "seq"], unique=False
        )

    op.create_table(
        "subscriptions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("owner_id", sa.String(length=64), nullable=False),
        sa.Column("owner_groups", sa.JSON(), nullable=False),
        sa.Column("callback_url", sa.String(length=1024), nullable=False),
        sa.Column("secret", sa.String(length=255), nullable=False),
        sa.Column("all_drives", sa.Boolean(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["users.id"],
            name=op.f("fk_subscriptions_owner_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriptions")),
    )
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_subscriptions_expires_at"), ["expires_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_subscriptions_owner_id"), ["owner_id"], unique=False)

    op.create_table(
        "subscription_drives",
        sa.Column("subscription_id", sa.String(length=64), nullable=False),
        sa.Column("space_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["space_id"],
            ["spaces.id"],
            name=op.f("fk_subscription_drives_space_id_spaces"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_subscription_drives_subscription_id_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("subscription_id", "space_id", name=op.f("pk_subscription_drives")),
    )
    with op.batch_alter_table("subscription_drives", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_subscription_drives_space_id"), ["space_id"], unique=False
        )

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("subscription_id", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("origin", sa.String(length=512), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("done_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.drop_constraint(batch_op.f("uq_outbox_event_id"), type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_outbox_subscription_id_event_id"), ["subscription_id", "event_id"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_outbox_subscription_id_subscriptions"),
            "subscriptions",
            ["subscription_id"],
            ["id"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_outbox_subscription_id_subscriptions"), type_="foreignkey"
        )
        batch_op.drop_constraint(batch_op.f("uq_outbox_subscription_id_event_id"), type_="unique")
        batch_op.create_unique_constraint(batch_op.f("uq_outbox_event_id"), ["event_id"])
        batch_op.drop_column("done_at")
        batch_op.drop_column("claimed_until")
        batch_op.drop_column("origin")
        batch_op.drop_column("subscription_id")

    with op.batch_alter_table("subscription_drives", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subscription_drives_space_id"))

    op.drop_table("subscription_drives")
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subscriptions_owner_id"))
        batch_op.drop_index(batch_op.f("ix_subscriptions_expires_at"))

    op.drop_table("subscriptions")
    with op.batch_alter_table("change_audience", schema=None) as batch_op:
        batch_op.drop_index("ix_change_audience_principal")

    op.drop_table("change_audience")
    op.drop_table("log_horizon")
    op.drop_table("destinations")
