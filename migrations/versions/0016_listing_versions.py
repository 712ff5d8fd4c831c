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
# virtual Shares drive). SQLite has one writer at a time: it raises them where they change.
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

# On PostgreSQL writers run side by side, and raising the versions where the changes happen
# would lock the rows of whoever each change concerns in the order the changes come, from the
# first change to the commit: two transactions changing different spaces with members in
# common would wait on each other (deadlock), and every write to a space a group holds would
# queue behind the others on the group's row. So the triggers only note whom a change concerns
# (in a temporary table of the session, emptied at each commit), and a trigger deferred to the
# commit raises the versions of all of them in one statement, in key order: a transaction takes
# these locks last, all at once and in the order every other takes them, and holds them only
# while it commits. So the database role that writes needs TEMPORARY on the database
# (PostgreSQL grants it to everyone unless revoked), a transaction that writes these tables
# cannot be prepared for two-phase commit, and a later migration that writes one of these
# tables and then alters it in the same run must `SET CONSTRAINTS ALL IMMEDIATE` before the
# ALTER. `OR REPLACE`: dropping the tables (as the bench's reset of a scratch database does)
# leaves the functions behind.
POSTGRESQL_NOTE = """
        IF to_regclass('pg_temp.listing_pending') IS NULL THEN
            CREATE TEMPORARY TABLE listing_pending (principal_type text, principal_id text)
            ON COMMIT DELETE ROWS;
        END IF;
        INSERT INTO pg_temp.listing_pending {rows};
        PERFORM set_config('spacereg.listing_pending', 'on', true);"""
POSTGRESQL = [
    f"""CREATE OR REPLACE FUNCTION spaces_listing() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN{
        POSTGRESQL_NOTE.format(
            rows="SELECT principal_type, principal_id FROM members WHERE space_id = NEW.id"
        )
    }
        RETURN NULL;
    END $$""",
    f"""CREATE OR REPLACE FUNCTION members_listing() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN{POSTGRESQL_NOTE.format(rows="VALUES (OLD.principal_type, OLD.principal_id)")}
        RETURN NULL;
    END $$""",
    f"""CREATE OR REPLACE FUNCTION incoming_shares_listing() RETURNS trigger LANGUAGE plpgsql
    AS $$
    BEGIN
        IF TG_OP = 'DELETE' THEN{POSTGRESQL_NOTE.format(rows="VALUES ('user', OLD.user_id)")}
        ELSE{POSTGRESQL_NOTE.format(rows="VALUES ('user', NEW.user_id)")}
        END IF;
        RETURN NULL;
    END $$""",
    # The first of these at the commit raises every noted version; the others see the
    # transaction's flag down and do nothing (looking at the emptied table again each time
    # would cost the commit of a change to n rows n scans of n dead rows).
    """CREATE OR REPLACE FUNCTION listing_raise() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF current_setting('spacereg.listing_pending', true) = 'on' THEN
            PERFORM set_config('spacereg.listing_pending', 'off', true);
            WITH noted AS (DELETE FROM pg_temp.listing_pending RETURNING *)
            INSERT INTO listing_versions AS held (principal_type, principal_id, version)
                SELECT DISTINCT principal_type, principal_id, 1 FROM noted
                ORDER BY principal_type, principal_id
            ON CONFLICT (principal_type, principal_id) DO UPDATE SET version = held.version + 1;
        END IF;
        RETURN NULL;
    END $$""",
    # Not `UPDATE OF version`: that ignores what the BEFORE trigger of 0015 sets.
    """CREATE TRIGGER spaces_listing AFTER UPDATE ON spaces
    FOR EACH ROW WHEN (NEW.version <> OLD.version) EXECUTE FUNCTION spaces_listing()""",
    """CREATE CONSTRAINT TRIGGER spaces_listing_raise AFTER UPDATE ON spaces
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.version <> OLD.version) EXECUTE FUNCTION listing_raise()""",
    """CREATE TRIGGER members_delete_listing AFTER DELETE ON members
    FOR EACH ROW EXECUTE FUNCTION members_listing()""",
    """CREATE TRIGGER members_update_listing AFTER UPDATE OF principal_type, principal_id
    ON members FOR EACH ROW
    WHEN (NEW.principal_type <> OLD.principal_type OR NEW.principal_id <> OLD.principal_id)
    EXECUTE FUNCTION members_listing()""",
    """CREATE CONSTRAINT TRIGGER members_listing_raise AFTER DELETE OR UPDATE ON members
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION listing_raise()""",
    """CREATE TRIGGER incoming_shares_listing AFTER INSERT OR UPDATE OR DELETE
    ON incoming_shares FOR EACH ROW EXECUTE FUNCTION incoming_shares_listing()""",
    """CREATE CONSTRAINT TRIGGER incoming_shares_listing_raise
    AFTER INSERT OR UPDATE OR DELETE ON incoming_shares
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION listing_raise()""",
]
POSTGRESQL_DROP = [
    *(
        f"DROP TRIGGER IF EXISTS {name} ON {table}"
        for name, table in (
            ("incoming_shares_listing_raise", "incoming_shares"),
            ("incoming_shares_listing", "incoming_shares"),
            ("members_listing_raise", "members"),
            ("members_update_listing", "members"),
            ("members_delete_listing", "members"),
            ("spaces_listing_raise", "spaces"),
            ("spaces_listing", "spaces"),
        )
    ),
    *(
        f"DROP FUNCTION IF EXISTS {name}()"
        for name in (
            "listing_raise",
            "incoming_shares_listing",
            "members_listing",
            "spaces_listing",
        )
    ),
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
