"""Listing versions: `listing_versions.version` grows with every change to what a principal's
listing of held drives shows, raised by triggers so that no writer can forget it (a replica
answers a listing again from what it encoded last while the caller's versions stand)

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30 17:20:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

# What changes a listing: a held space's version (raised by 0015's triggers for every change
# to its drive JSON, members included), a role gained or lost (the space's version rises too,
# but a lost role's holder is no longer among its members), and a user's incoming shares (the
# virtual Shares drive). Rows are raised in key order, so that two writers lock them in one
# order.
SQLITE_BUMP = """INSERT INTO listing_versions (principal_type, principal_id, version)
    {rows}
    ON CONFLICT (principal_type, principal_id) DO UPDATE SET version = version + 1"""
SQLITE = [
    f"""CREATE TRIGGER spaces_listing AFTER UPDATE ON spaces
    FOR EACH ROW WHEN NEW.version <> OLD.version
    BEGIN {
        SQLITE_BUMP.format(
            rows='''SELECT principal_type, principal_id, 1 FROM members
        WHERE space_id = NEW.id ORDER BY principal_type, principal_id'''
        )
    }; END""",
    f"""CREATE TRIGGER members_delete_listing AFTER DELETE ON members
    BEGIN {SQLITE_BUMP.format(rows="VALUES (OLD.principal_type, OLD.principal_id, 1)")}; END""",
    f"""CREATE TRIGGER members_update_listing AFTER UPDATE OF principal_type, principal_id
    ON members FOR EACH ROW
    WHEN NEW.principal_type <> OLD.principal_type OR NEW.principal_id <> OLD.principal_id
    BEGIN {SQLITE_BUMP.format(rows="VALUES (OLD.principal_type, OLD.principal_id, 1)")}; END""",
    *(
        f"""CREATE TRIGGER incoming_shares_{event.lower()}_listing AFTER {event}
        ON incoming_shares
        BEGIN {SQLITE_BUMP.format(rows=f"VALUES ('user', {row}.user_id, 1)")}; END"""
        for event, row in (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD"))
    ),
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS " + name
    for name in (
        "spaces_listing",
        "members_delete_listing",
        "members_update_listing",
        "incoming_shares_insert_listing",
        "incoming_shares_update_listing",
        "incoming_shares_delete_listing",
    )
]

# `OR REPLACE`: dropping the tables (as the bench's reset of a scratch database does) leaves
# the functions behind.
POSTGRESQL_BUMP = """INSERT INTO listing_versions AS held (principal_type, principal_id, version)
    {rows}
    ON CONFLICT (principal_type, principal_id) DO UPDATE SET version = held.version + 1"""
POSTGRESQL = [
    f"""CREATE OR REPLACE FUNCTION spaces_listing() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        {
        POSTGRESQL_BUMP.format(
            rows='''SELECT principal_type, principal_id, 1 FROM members
            WHERE space_id = NEW.id ORDER BY principal_type, principal_id'''
        )
    };
        RETURN NULL;
    END $$""",
    # Not `UPDATE OF version`: that ignores what the BEFORE trigger of 0015 sets.
    """CREATE TRIGGER spaces_listing AFTER UPDATE ON spaces
    FOR EACH ROW WHEN (NEW.version <> OLD.version) EXECUTE FUNCTION spaces_listing()""",
    f"""CREATE OR REPLACE FUNCTION members_listing() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        {POSTGRESQL_BUMP.format(rows="VALUES (OLD.principal_type, OLD.principal_id, 1)")};
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER members_delete_listing AFTER DELETE ON members
    FOR EACH ROW EXECUTE FUNCTION members_listing()""",
    """CREATE TRIGGER members_update_listing AFTER UPDATE OF principal_type, principal_id
    ON members FOR EACH ROW
    WHEN (NEW.principal_type <> OLD.principal_type OR NEW.principal_id <> OLD.principal_id)
    EXECUTE FUNCTION members_listing()""",
    f"""CREATE OR REPLACE FUNCTION incoming_shares_listing() RETURNS trigger LANGUAGE plpgsql
    AS $$
    BEGIN
        IF TG_OP = 'DELETE' THEN
            {POSTGRESQL_BUMP.format(rows="VALUES ('user', OLD.user_id, 1)")};
        ELSE
            {POSTGRESQL_BUMP.format(rows="VALUES ('user', NEW.user_id, 1)")};
        END IF;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER incoming_shares_listing AFTER INSERT OR UPDATE OR DELETE
    ON incoming_shares FOR EACH ROW EXECUTE FUNCTION incoming_shares_listing()""",
]
POSTGRESQL_DROP = [
    "DROP TRIGGER IF EXISTS incoming_shares_listing ON incoming_shares",
    "DROP TRIGGER IF EXISTS members_update_listing ON members",
    "DROP TRIGGER IF EXISTS members_delete_listing ON members",
    "DROP TRIGGER IF EXISTS spaces_listing ON spaces",
    "DROP FUNCTION IF EXISTS incoming_shares_listing()",
    "DROP FUNCTION IF EXISTS members_listing()",
    "DROP FUNCTION IF EXISTS spaces_listing()",
]


def upgrade() -> None:
    op.create_table(
        "listing_versions",
        sa.Column("principal_type", sa.String(length=8), nullable=False),
        sa.Column("principal_id", sa.String(length=255), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("principal_type", "principal_id", name=op.f("pk_listing_versions")),
    )
    postgresql = op.get_bind().dialect.name == "postgresql"
    for statement in POSTGRESQL if postgresql else SQLITE:
        op.execute(statement)


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for statement in POSTGRESQL_DROP if postgresql else SQLITE_DROP:
        op.execute(statement)
    op.drop_table("listing_versions")
