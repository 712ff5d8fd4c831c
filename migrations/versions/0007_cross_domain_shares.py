"""cross-domain shares: share spaces (a folder of another space), shares sent and received,
share tokens, OCM user invitations

Revision ID: 0007
Revises: 0005
Create Date: 2026-11-30 11:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("spaces", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("parent_path", sa.String(length=1024), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_spaces_parent_id_spaces"),
            "spaces",
            ["parent_id"],
            ["id"],
            ondelete="CASCADE",
        )
    op.create_table(
        "outgoing_shares",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("space_id", sa.String(length=64), nullable=False),
        sa.Column("source_space_id", sa.String(length=64), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("recipient", sa.String(length=255), nullable=False),
        sa.Column("peer_domain", sa.String(length=255), nullable=False),
        sa.Column("ocm_endpoint", sa.String(length=1024), nullable=False),
        sa.Column("member_id", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outgoing_shares")),
        sa.UniqueConstraint(
            "source_space_id",
            "path",
            "recipient",
            name=op.f("uq_outgoing_shares_source_space_id_path_recipient"),
        ),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_outgoing_shares_secret_hash")),
    )
    op.create_index(
        op.f("ix_outgoing_shares_space_id"), "outgoing_shares", ["space_id"], unique=False
    )
    op.create_table(
        "incoming_shares",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("provider_id", sa.String(length=255), nullable=False),
        sa.Column("sender", sa.String(length=255), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=False),
        sa.Column("sender_name", sa.String(length=255), nullable=False),
        sa.Column("owner_name", sa.String(length=255), nullable=False),
        sa.Column("peer_domain", sa.String(length=255), nullable=False),
        sa.Column("ocm_endpoint", sa.String(length=1024), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("resource_type", sa.String(length=16), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("webdav_uri", sa.String(length=1024), nullable=False),
        sa.Column("secret", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("mountpoint_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_incoming_shares_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["mountpoint_id"],
            ["spaces.id"],
            name=op.f("fk_incoming_shares_mountpoint_id_spaces"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incoming_shares")),
        sa.UniqueConstraint(
            "provider_id", "sender", name=op.f("uq_incoming_shares_provider_id_sender")
        ),
    )
    op.create_index(
        "ix_incoming_shares_user", "incoming_shares", ["user_id", "created_at"], unique=False
    )
    op.create_table(
        "share_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("share_id", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["share_id"],
            ["outgoing_shares.id"],
            name=op.f("fk_share_tokens_share_id_outgoing_shares"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_share_tokens")),
    )
    op.create_index(op.f("ix_share_tokens_share_id"), "share_tokens", ["share_id"], unique=False)
    op.create_index(
        op.f("ix_share_tokens_expires_at"), "share_tokens", ["expires_at"], unique=False
    )

    op.create_table(
        "ocm_invitations",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("accepted_by", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_ocm_invitations_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_ocm_invitations")),
    )


def downgrade() -> None:
    op.drop_table("ocm_invitations")
    op.drop_index(op.f("ix_share_tokens_expires_at"), table_name="share_tokens")
    op.drop_index(op.f("ix_share_tokens_share_id"), table_name="share_tokens")
    op.drop_table("share_tokens")
    op.drop_index("ix_incoming_shares_user", table_name="incoming_shares")
    op.drop_table("incoming_shares")
    op.drop_index(op.f("ix_outgoing_shares_space_id"), table_name="outgoing_shares")
    op.drop_table("outgoing_shares")
    with op.batch_alter_table("spaces", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_spaces_parent_id_spaces"), type_="foreignkey")
        batch_op.drop_column("parent_path")
        batch_op.drop_column("parent_id")
