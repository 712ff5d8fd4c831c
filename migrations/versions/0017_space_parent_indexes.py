"""Indexes on the spaces that point at another row: a share space's `parent_id` (read for
every content change of a space, to tell its share spaces) and a mountpoint's
`remote_peer_id` (read when a peer is revoked); without them each of those lookups, and
each delete of a space or a peer (their foreign keys cascade), reads every space.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-30 19:40:00.000000
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f("ix_spaces_parent_id"), "spaces", ["parent_id"], unique=False)
    op.create_index(op.f("ix_spaces_remote_peer_id"), "spaces", ["remote_peer_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_spaces_remote_peer_id"), table_name="spaces")
    op.drop_index(op.f("ix_spaces_parent_id"), table_name="spaces")
