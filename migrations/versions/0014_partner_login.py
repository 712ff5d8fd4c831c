"""web_sessions of a partner's user: the address a session acts for, and the partner's
issuer and nonce of a login in flight there

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 14:10:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("remote", sa.String(length=512), nullable=True))
        batch_op.add_column(sa.Column("login_issuer", sa.String(length=1024), nullable=True))
        batch_op.add_column(sa.Column("login_nonce", sa.String(length=64), nullable=True))


def downgrade() -> None:
    # Sessions of partners' users end (they would act as nobody): they log in again.
    op.execute(sa.text("DELETE FROM web_sessions WHERE remote IS NOT NULL"))
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.drop_column("login_nonce")
        batch_op.drop_column("login_issuer")
        batch_op.drop_column("remote")
