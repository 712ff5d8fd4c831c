"""Share change push: the subscription and the number of the last change message of it that
we applied to a share we accepted, so that a gap or a new subscription is seen

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 14:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("incoming_shares", schema=None) as batch_op:
        batch_op.add_column(sa.Column("change_subscription", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("change_seq", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("incoming_shares", schema=None) as batch_op:
        batch_op.drop_column("change_seq")
        batch_op.drop_column("change_subscription")
