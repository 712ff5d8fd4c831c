"""Alembic migrations on SQLite and PostgreSQL: up, down, up again; models and migrations agree;
`spacereg migrate` brings a fresh database to head."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from registry.core.models import Base
from registry.runtime.db import create_engine
from registry.runtime.migrate import alembic_config, current_revision, downgrade, upgrade
from tests.databases import database_url
from tests.processes import SPACEREG, clean_env

REPO = Path(__file__).resolve().parent.parent
HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()
TABLES_0001 = {"users", "peers", "spaces", "members", "changes", "outbox", "idp_grants"}
TABLES_0003 = TABLES_0001 | {
    "change_audience",
    "log_horizon",
    "subscriptions",
    "subscription_drives",
    "destinations",
}
TABLES_0004 = TABLES_0003 | {"login_failures"}
TABLES_0005 = TABLES_0004 | {"peer_invitations", "signature_replays"}
TABLES = TABLES_0005 | {"peer_inbox", "web_sessions"}
TABLES |= {"outgoing_shares", "incoming_shares", "share_tokens", "ocm_invitations"}
TABLES |= {"dav_locks", "dav_properties", "dav_uploads", "dav_upload_chunks"}
TABLES |= {"app_passwords"}
TABLES |= {"share_subscriptions", "remote_subscriptions", "listing_versions"}
INDEXES = {
    "members": {"ix_members_principal": ["principal_type", "principal_id", "space_id"]},
    "changes": {"ix_changes_space_seq": ["space_id", "seq"]},
    "outbox": {"ix_outbox_due": ["state", "next_attempt_at"]},
    "signature_replays": {"ix_signature_replays_until": ["until"]},
    "web_sessions": {"ix_web_sessions_expires_at": ["expires_at"]},
    "peer_inbox": {"ix_peer_inbox_received_at": ["received_at"]},
    "incoming_shares": {"ix_incoming_shares_user": ["user_id", "created_at"]},
    "outgoing_shares": {"ix_outgoing_shares_space_id": ["space_id"]},
    "share_tokens": {
        "ix_share_tokens_share_id": ["share_id"],
        "ix_share_tokens_expires_at": ["expires_at"],
    },
    "app_passwords": {"ix_app_passwords_user_id": ["user_id"]},
}
__all__ = ["database_url"]  # a fixture


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


async def schema(engine: AsyncEngine) -> dict[str, Any]:
    def read(connection: Connection) -> dict[str, Any]:
        inspector = inspect(connection)
        tables = set(inspector.get_table_names()) - {"alembic_version"}
        return {
            "tables": tables,
            "indexes": {
                name: {ix["name"]: ix["column_names"] for ix in inspector.get_indexes(name)}
                for name in tables
            },
            "unique": {
                name: {tuple(uq["column_names"]) for uq in inspector.get_unique_constraints(name)}
                for name in tables
            },
            "foreign_keys": {
                name: {
                    (tuple(fk["constrained_columns"]), fk["referred_table"])
                    for fk in inspector.get_foreign_keys(name)
                }
                for name in tables
            },
        }

    async with engine.connect() as connection:
        return await connection.run_sync(read)


async def differences(engine: AsyncEngine) -> list[Any]:
    def compare(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    async with engine.connect() as connection:
        return await connection.run_sync(compare)


async def test_upgrade_to_head_creates_every_table_and_index(engine: AsyncEngine) -> None:
    await upgrade(engine)

    found = await schema(engine)
    assert await current_revision(engine) == HEAD
    assert found["tables"] == TABLES
    for table_name, indexes in INDEXES.items():
        for index_name, columns in indexes.items():
            assert found["indexes"][table_name][index_name] == columns
    assert ("issuer", "subject") in found["unique"]["users"]
    assert ("space_id", "principal_type", "principal_id") in found["unique"]["members"]
    assert (("space_id",), "spaces") in found["foreign_keys"]["members"]
    assert (("remote_peer_id",), "peers") in found["foreign_keys"]["spaces"]
    assert (("user_id",), "users") in found["foreign_keys"]["app_passwords"]


async def test_downgrade_to_base_removes_every_table_and_upgrade_restores_them(
    engine: AsyncEngine,
) -> None:
    await upgrade(engine)

    await downgrade(engine, "base")
    assert await current_revision(engine) is None
    assert (await schema(engine))["tables"] == set()

    await upgrade(engine)
    assert await current_revision(engine) == HEAD
    assert (await schema(engine))["tables"] == TABLES


async def test_each_revision_downgrades_to_the_one_before(engine: AsyncEngine) -> None:
    await upgrade(engine)

    await downgrade(engine, "0005")
    assert await current_revision(engine) == "0005"
    assert (await schema(engine))["tables"] == TABLES_0005
    assert "ux_outbox_message" not in (await schema(engine))["indexes"]["outbox"]
    assert "partner_state" not in await columns(engine, "peers")

    await downgrade(engine, "0004")
    assert await current_revision(engine) == "0004"
    assert (await schema(engine))["tables"] == TABLES_0004
    assert "signed_at" not in await columns(engine, "peers")

    await downgrade(engine, "0003")
    assert await current_revision(engine) == "0003"
    assert (await schema(engine))["tables"] == TABLES_0003

    await downgrade(engine, "0002")
    assert await current_revision(engine) == "0002"
    assert (await schema(engine))["tables"] == TABLES_0003
    assert "kind" not in await outbox_columns(engine)

    await downgrade(engine, "0001")
    assert await current_revision(engine) == "0001"
    assert (await schema(engine))["tables"] == TABLES_0001
    assert ("event_id",) in (await schema(engine))["unique"]["outbox"]

    await upgrade(engine)
    found = await schema(engine)
    assert found["tables"] == TABLES
    assert ("subscription_id", "event_id") in found["unique"]["outbox"]
    assert "kind" in await outbox_columns(engine)
    assert {"updated_at", "last_contact_at", "signed_at"} <= await columns(engine, "peers")
    assert {"opened_at", "probe_until", "paused"} <= await columns(engine, "destinations")
    assert await differences(engine) == []


async def test_deliveries_queued_before_kinds_existed_become_webhooks(engine: AsyncEngine) -> None:
    await upgrade(engine, "0002")
    async with engine.begin() as conn:
        await conn.execute(text(QUEUE_0002), {"event_id": "7"})

    await upgrade(engine)
    async with engine.begin() as conn:
        assert (await conn.execute(text("SELECT kind FROM outbox"))).scalar_one() == "webhook"
        await conn.execute(text(QUEUE_0003), {"kind": "peer", "event_id": "8"})

    await downgrade(engine, "0002")  # the old sender could not send a peer's: it goes
    async with engine.connect() as conn:
        left = (await conn.execute(text("SELECT event_id FROM outbox"))).scalars().all()
    assert left == ["7"]


QUEUE_0002 = (
    "INSERT INTO outbox (event_id, destination, origin, payload, state, attempts,"
    " next_attempt_at, created_at) VALUES (:event_id, 'https://h.example/hook',"
    " 'https://h.example', '{}', 'pending', 0, '2026-01-01 00:00:00+00:00',"
    " '2026-01-01 00:00:00+00:00')"
)
QUEUE_0003 = QUEUE_0002.replace("(event_id,", "(kind, event_id,").replace(
    "VALUES (:event_id,", "VALUES (:kind, :event_id,"
)


async def test_repeats_of_a_peer_message_queued_before_0006_are_dropped_but_the_first(
    engine: AsyncEngine,
) -> None:
    await upgrade(engine, "0005")
    async with engine.begin() as conn:
        for event_id in ("m1", "m1", "m2"):
            await conn.execute(text(QUEUE_0003), {"kind": "peer", "event_id": event_id})

    await upgrade(engine)

    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT id, event_id FROM outbox ORDER BY id"))).all()
    assert [(row.id, row.event_id) for row in rows] == [(1, "m1"), (3, "m2")]


async def outbox_columns(engine: AsyncEngine) -> set[str]:
    return await columns(engine, "outbox")


async def columns(engine: AsyncEngine, table_name: str) -> set[str]:
    def read(connection: Connection) -> set[str]:
        return {column["name"] for column in inspect(connection).get_columns(table_name)}

    async with engine.connect() as connection:
        return await connection.run_sync(read)


async def test_migrated_database_matches_the_models(engine: AsyncEngine) -> None:
    await upgrade(engine)

    assert await differences(engine) == []


async def test_migrate_command_brings_a_fresh_database_to_head(
    database_url: str, tmp_path: Path
) -> None:
    env = clean_env()
    args = [*SPACEREG, "--data-dir", str(tmp_path / "data"), "migrate"]
    if database_url.startswith("postgresql"):
        env["SPACEREG_DATABASE_URL"] = database_url
    else:
        database_url = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'spacereg.db'}"

    done = await asyncio.to_thread(
        subprocess.run,
        args,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    engine = create_engine(database_url)
    try:
        assert await current_revision(engine) == HEAD
        assert (await schema(engine))["tables"] == TABLES
    finally:
        await engine.dispose()


async def test_accepted_shares_renewals_become_one_subscription_per_remote_space(
    engine: AsyncEngine,
) -> None:
    await upgrade(engine, "0011")
    async with engine.begin() as conn:
        await conn.execute(text(USER_0011))
        for share_id, state, renew_at in [
            ("s1", "accepted", datetime(2026, 1, 1, 10, 30, tzinfo=UTC)),
            ("s2", "accepted", datetime(2026, 1, 1, 10, 10, tzinfo=UTC)),  # the first due
            ("s3", "pending", None),
        ]:
            values = {"id": share_id, "state": state, "renew_at": renew_at}
            await conn.execute(text(INCOMING_0011), values)

    await upgrade(engine)
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM remote_subscriptions"))).all()
    assert [(row.peer_domain, row.webdav_uri) for row in rows] == [("zurich.test", WEBDAV_URI)]
    assert str(rows[0].renew_at).startswith("2026-01-01 10:10:00")
    assert not rows[0].lapsed and rows[0].renewal_id is None

    await downgrade(engine, "0011")
    async with engine.connect() as conn:
        found = await conn.execute(text("SELECT id, renew_at FROM incoming_shares ORDER BY id"))
        renewals = {share_id: renew_at for share_id, renew_at in found}
    assert renewals["s3"] is None
    assert (
        str(renewals["s1"]).startswith("2026-01-01 10:10:00") and renewals["s1"] == renewals["s2"]
    )


WEBDAV_URI = "https://registry.zurich.test/dav/spaces/0123"
USER_0011 = (
    "INSERT INTO users (id, issuer, subject, username, display_name, created_at)"
    " VALUES ('u1', 'https://idp.paris.test', 'marie', 'marie', 'Marie',"
    " '2026-01-01 00:00:00+00:00')"
)
INCOMING_0011 = (
    "INSERT INTO incoming_shares (id, provider_id, sender, owner, sender_name, owner_name,"
    " peer_domain, ocm_endpoint, user_id, name, resource_type, role, webdav_uri, secret, state,"
    " renew_at, created_at, updated_at) VALUES (:id, :id, 'einstein@zurich.test',"
    " 'einstein@zurich.test', 'Einstein', 'Einstein', 'zurich.test', 'https://zurich.test/ocm',"
    " 'u1', 'project', 'folder', 'editor', '" + WEBDAV_URI + "', :id, :state,"
    " :renew_at, '2026-01-01 00:00:00+00:00', '2026-01-01 00:00:00+00:00')"
)
