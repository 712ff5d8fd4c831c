"""WebDAV: locks, dead properties and chunked uploads, in the database so every replica shares them

Revision ID: 0010
Revises: 0005
Create Date: 2026-11-30 10:56:02.621633
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dav_locks",
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("space_id", sa.String(length=64), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("depth", sa.String(length=8), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("owner", sa.Text(), nullable=False),
        sa.Column("principal", sa.String(length=255), nullable=False),
        sa.Column("timeout_seconds", sa.Integer(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["space_id"],
            ["spaces.id"],
            name=op.f("fk_dav_locks_space_id_spaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token", name=op.f("pk_dav_locks")),
    )
    with op.batch_alter_table("dav_locks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dav_locks_expires_at"), ["expires_at"], unique=False)
        batch_op.create_index("ix_dav_locks_space_path", ["space_id", "path"], unique=False)

    op.create_table(
        "dav_properties",
        sa.Column("space_id", sa.String(length=64), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("name", sa.String(length=1024), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["space_id"],
            ["spaces.id"],
            name=op.f("fk_dav_properties_space_id_spaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("space_id", "path", "name", name=op.f("pk_dav_properties")),
    )
    op.create_table(
        "dav_uploads",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=False),
        sa.Column("key", sa.String(length=512), nullable=False),
        sa.Column("space_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["space_id"],
            ["spaces.id"],
            name=op.f("fk_dav_uploads_space_id_spaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dav_uploads")),
        sa.UniqueConstraint("owner", "key", name=op.f("uq_dav_uploads_owner_key")),
    )
    with op.batch_alter_table("dav_uploads", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dav_uploads_created_at"), ["created_at"], unique=False)

    op.create_table(
        "dav_upload_chunks",
        sa.Column("upload_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["upload_id"],
            ["dav_uploads.id"],
            name=op.f("fk_dav_upload_chunks_upload_id_dav_uploads"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("upload_id", "name", name=op.f("pk_dav_upload_chunks")),
    )


def downgrade() -> None:
    # Locks, dead properties and chunked uploads in progress are lost: 0005 knows none of them.
    op.drop_table("dav_upload_chunks")
    with op.batch_alter_table("dav_uploads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dav_uploads_created_at"))

    op.drop_table("dav_uploads")
    op.drop_table("dav_properties")
    with op.batch_alter_table("dav_locks", schema=None) as batch_op:
        batch_op.drop_index("ix_dav_locks_space_path")
        batch_op.drop_index(batch_op.f("ix_dav_locks_expires_at"))

    op.drop_table("dav_locks")
