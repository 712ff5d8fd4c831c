"""outbox: a kind per delivery, so that each kind has its own sender

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every delivery so far went to a webhook; from now on each writer names its kind.
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=16), nullable=False, server_default="webhook")
        )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.alter_column("kind", server_default=None)


def downgrade() -> None:
    # Deliveries of other kinds cannot be told apart without the column, nor sent: drop them.
    op.execute(sa.text("DELETE FROM outbox WHERE kind <> 'webhook'"))
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("kind")
