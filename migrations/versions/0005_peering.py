"""peering: peers' state and contact times, invitations, a replay cache of signatures

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 09:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("peers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("last_contact_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("signed_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "peer_invitations",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("used_by", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_peer_invitations")),
    )
    op.create_table(
        "signature_replays",
        sa.Column("signature_id", sa.String(length=64), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("signature_id", name=op.f("pk_signature_replays")),
    )
    op.create_index(
        op.f("ix_signature_replays_until"), "signature_replays", ["until"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_signature_replays_until"), table_name="signature_replays")
    op.drop_table("signature_replays")
    op.drop_table("peer_invitations")
    with op.batch_alter_table("peers", schema=None) as batch_op:
        batch_op.drop_column("signed_at")
        batch_op.drop_column("last_contact_at")
        batch_op.drop_column("updated_at")
