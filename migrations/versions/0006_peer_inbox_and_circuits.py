"""peers: an idempotent inbox, one queued message per id, circuits, the partner's view

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 11:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "peer_inbox",
        sa.Column("peer", sa.String(length=255), nullable=False),
        sa.Column("message_id", sa.String(length=128), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("answer", sa.JSON(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("peer", "message_id", name=op.f("pk_peer_inbox")),
    )
    op.create_index(op.f("ix_peer_inbox_received_at"), "peer_inbox", ["received_at"])
    # Earlier repeats of one message to a peer would break the unique index: keep the first.
    op.execute(
        sa.text(
            "DELETE FROM outbox WHERE subscription_id IS NULL AND id NOT IN ("
            "SELECT min(id) FROM outbox WHERE subscription_id IS NULL "
            "GROUP BY kind, destination, event_id)"
        )
    )
    op.create_index(
        "ux_outbox_message",
        "outbox",
        ["kind", "destination", "event_id"],
        unique=True,
        sqlite_where=sa.text("subscription_id IS NULL"),
        postgresql_where=sa.text("subscription_id IS NULL"),
    )
    with op.batch_alter_table("destinations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("probe_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("paused", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("peers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "partner_state", sa.String(length=16), nullable=False, server_default="active"
            )
        )
    # `pending` was never written: no peer sits between acceptance and verified keys.
    op.execute(sa.text("UPDATE peers SET status = 'active' WHERE status = 'pending'"))


def downgrade() -> None:
    with op.batch_alter_table("peers", schema=None) as batch_op:
        batch_op.drop_column("partner_state")
    with op.batch_alter_table("destinations", schema=None) as batch_op:
        batch_op.drop_column("paused")
        batch_op.drop_column("probe_until")
        batch_op.drop_column("opened_at")
    op.drop_index("ux_outbox_message", table_name="outbox")
    op.drop_index(op.f("ix_peer_inbox_received_at"), table_name="peer_inbox")
    op.drop_table("peer_inbox")
