"""Space versions: `spaces.version` grows with every change to what a drive's JSON shows,
raised by triggers so that no writer can forget it (the listing keeps encoded drives by it)

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30 14:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# What changes a drive's JSON: its row, a member added, changed or removed, or a member's
# display name. A write that sets the version itself keeps its value.
SQLITE = [
    """CREATE TRIGGER spaces_version AFTER UPDATE ON spaces
    FOR EACH ROW WHEN NEW.version = OLD.version
    BEGIN UPDATE spaces SET version = OLD.version + 1 WHERE id = NEW.id; END""",
    """CREATE TRIGGER members_insert_version AFTER INSERT ON members
    BEGIN UPDATE spaces SET version = version + 1 WHERE id = NEW.space_id; END""",
    """CREATE TRIGGER members_update_version AFTER UPDATE ON members
    BEGIN UPDATE spaces SET version = version + 1 WHERE id IN (OLD.space_id, NEW.space_id); END""",
    """CREATE TRIGGER members_delete_version AFTER DELETE ON members
    BEGIN UPDATE spaces SET version = version + 1 WHERE id = OLD.space_id; END""",
    """CREATE TRIGGER users_version AFTER UPDATE OF display_name ON users
    FOR EACH ROW WHEN NEW.display_name IS NOT OLD.display_name
    BEGIN UPDATE spaces SET version = version + 1 WHERE id IN (
        SELECT space_id FROM members WHERE principal_type = 'user' AND principal_id = NEW.id
    ); END""",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS " + name
    for name in (
        "spaces_version",
        "members_insert_version",
        "members_update_version",
        "members_delete_version",
        "users_version",
    )
]

# `OR REPLACE`: dropping the tables (as the bench's reset of a scratch database does) leaves
# the functions behind.
POSTGRESQL = [
    """CREATE OR REPLACE FUNCTION spaces_version() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.version = OLD.version THEN NEW.version := OLD.version + 1; END IF;
        RETURN NEW;
    END $$""",
    """CREATE TRIGGER spaces_version BEFORE UPDATE ON spaces
    FOR EACH ROW EXECUTE FUNCTION spaces_version()""",
    """CREATE OR REPLACE FUNCTION members_version() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP <> 'INSERT' THEN
            UPDATE spaces SET version = version + 1 WHERE id = OLD.space_id;
        END IF;
        IF TG_OP <> 'DELETE' AND (TG_OP = 'INSERT' OR NEW.space_id <> OLD.space_id) THEN
            UPDATE spaces SET version = version + 1 WHERE id = NEW.space_id;
        END IF;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER members_version AFTER INSERT OR UPDATE OR DELETE ON members
    FOR EACH ROW EXECUTE FUNCTION members_version()""",
    """CREATE OR REPLACE FUNCTION users_version() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE spaces SET version = version + 1 WHERE id IN (
            SELECT space_id FROM members WHERE principal_type = 'user' AND principal_id = NEW.id
        );
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER users_version AFTER UPDATE OF display_name ON users
    FOR EACH ROW WHEN (NEW.display_name IS DISTINCT FROM OLD.display_name)
    EXECUTE FUNCTION users_version()""",
]
POSTGRESQL_DROP = [
    "DROP TRIGGER IF EXISTS users_version ON users",
    "DROP TRIGGER IF EXISTS members_version ON members",
    "DROP TRIGGER IF EXISTS spaces_version ON spaces",
    "DROP FUNCTION IF EXISTS users_version()",
    "DROP FUNCTION IF EXISTS members_version()",
    "DROP FUNCTION IF EXISTS spaces_version()",
]


def upgrade() -> None:
    op.add_column(
        "spaces", sa.Column("version", sa.BigInteger(), server_default="0", nullable=False)
    )
    postgresql = op.get_bind().dialect.name == "postgresql"
    for statement in POSTGRESQL if postgresql else SQLITE:
        op.execute(statement)


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for statement in POSTGRESQL_DROP if postgresql else SQLITE_DROP:
        op.execute(statement)
    with op.batch_alter_table("spaces", schema=None) as batch_op:
        batch_op.drop_column("version")
