"""Indexes on the spaces that point at another row: a share space's `parent_id` (read for
every content change of a space, to tell its share spaces) and a mountpoint's
`remote_peer_id` (read when a peer is revoked); without them each of those lookups, and
each delete of a space or a peer (their foreign keys cascade), reads every space.

Partial (`IS NOT NULL`): most spaces have neither, and without statistics SQLite would take an
index on all rows for `parent_id IS NULL` (the reconciliation's pages), reading every space
per page.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-30 19:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for column in ("parent_id", "remote_peer_id"):
        set_only = sa.text(f"{column} IS NOT NULL")
        op.create_index(
            op.f(f"ix_spaces_{column}"),
            "spaces",
            [column],
            unique=False,
            sqlite_where=set_only,
            postgresql_where=set_only,
        )


def downgrade() -> None:
    op.drop_index(op.f("ix_spaces_remote_peer_id"), table_name="spaces")
    op.drop_index(op.f("ix_spaces_parent_id"), table_name="spaces")
