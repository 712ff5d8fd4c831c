"""The registry on PostgreSQL behaves over HTTP as it does on SQLite."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from registry.access.roles import UNIFIED_ROLE_IDS, VIEWER
from registry.core.models import Member, Space, User, table
from registry.runtime.db import create_engine
from tests import test_hostile_input as hostile
from tests.conftest import Registry, running_registry
from tests.schema import (
    assert_libregraph_drive,
    assert_libregraph_drive_list,
    assert_matches_openapi,
)

pytestmark = pytest.mark.postgres

users, spaces, members = table(User), table(Space), table(Member)
CONCURRENT_FIRST_REQUESTS = 20


@pytest.fixture
def pg_registry(tmp_path: Path, idp_key_dir: Path, postgres_url: str) -> Iterator[Registry]:
    # Its own data directory: a test may run it next to conftest's SQLite `registry`.
    data_dir = tmp_path / "pg-data"
    with running_registry(data_dir, idp_key_dir, database_url=postgres_url) as running:
        yield running


async def share_a_project_with_einstein(registry: Registry) -> dict[str, Any]:
    """Personal space on first request, a project made by admin, einstein invited as viewer;
    returns what einstein and admin see, without the ids and times that differ between runs."""
    async with registry.client("einstein") as einstein, registry.client("admin") as admin:
        mine = await einstein.get("/graph/v1.0/me/drives")
        assert mine.status_code == 200, mine.text
        assert_matches_openapi(mine, "/graph/v1.0/me/drives", "get")
        assert_libregraph_drive_list(mine.json())

        created = await admin.post("/graph/v1.0/drives", json={"name": "Physics Lab"})
        assert created.status_code == 201, created.text
        assert_matches_openapi(created, "/graph/v1.0/drives", "post")
        assert_libregraph_drive(created.json())
        project_id = created.json()["id"]

        invited = await admin.post(
            f"/graph/v1beta1/drives/{project_id}/root/invite",
            json={"recipients": [{"objectId": "einstein"}], "roles": [UNIFIED_ROLE_IDS[VIEWER]]},
        )
        assert invited.status_code == 200, invited.text
        assert_matches_openapi(invited, "/graph/v1beta1/drives/{id}/root/invite", "post")

        listed = await einstein.get("/graph/v1beta1/me/drives", params={"$orderby": "name"})
        assert listed.status_code == 200, listed.text
        assert_matches_openapi(listed, "/graph/v1beta1/me/drives", "get")
        assert_libregraph_drive_list(listed.json())

        return {
            "einstein": [
                (d["driveAlias"], d["driveType"], d["name"], d["quota"], _roles(d))
                for d in listed.json()["value"]
            ],
            "project": (created.json()["driveAlias"], created.json()["quota"]),
            "invited": [p["roles"] for p in invited.json()["value"]],
        }


def _roles(drive: dict[str, Any]) -> list[tuple[str, list[str]]]:
    return sorted(
        (p["grantedToV2"]["user"]["displayName"], p["roles"]) for p in drive["root"]["permissions"]
    )


async def test_sharing_a_project_space_works_on_postgresql(pg_registry: Registry) -> None:
    seen = await share_a_project_with_einstein(pg_registry)

    assert [(alias, kind) for alias, kind, *_ in seen["einstein"]] == [
        ("personal/einstein", "personal"),
        ("project/physics-lab", "project"),
    ]
    assert seen["invited"] == [[UNIFIED_ROLE_IDS[VIEWER]]]


async def test_postgresql_and_sqlite_answer_the_same(
    pg_registry: Registry, registry: Registry
) -> None:
    on_postgres = await share_a_project_with_einstein(pg_registry)
    on_sqlite = await share_a_project_with_einstein(registry)  # conftest's: SQLite

    assert on_postgres == on_sqlite


async def count_rows(engine: AsyncEngine, username: str) -> tuple[int, int]:
    async with engine.connect() as conn:
        user_ids = select(users.c.id).where(users.c.username == username)
        user_rows = (
            await conn.execute(select(func.count()).select_from(user_ids.subquery()))
        ).scalar_one()
        personal = (
            await conn.execute(
                select(func.count())
                .select_from(spaces)
                .where(spaces.c.drive_type == "personal", spaces.c.created_by.in_(user_ids))
            )
        ).scalar_one()
    return int(user_rows), int(personal)


async def forget_user(engine: AsyncEngine, username: str) -> None:
    """Remove a user and their personal space, as if they had never been seen."""
    async with engine.begin() as conn:
        user_ids = select(users.c.id).where(users.c.username == username)
        owned = select(spaces.c.id).where(spaces.c.created_by.in_(user_ids))
        await conn.execute(members.delete().where(members.c.space_id.in_(owned)))
        await conn.execute(spaces.delete().where(spaces.c.created_by.in_(user_ids)))
        await conn.execute(users.delete().where(users.c.username == username))


async def test_concurrent_first_requests_create_one_user_and_one_personal_space(
    pg_registry: Registry,
) -> None:
    # The embedded IdP provisions its users at start; make richard brand-new again. Nobody has
    # called as richard on this server, so its in-memory cache of known users is empty.
    engine = create_engine(pg_registry.settings.database_url)
    try:
        await forget_user(engine, "richard")
        assert await count_rows(engine, "richard") == (0, 0)

        async with pg_registry.client("richard", limits=httpx2.Limits(max_connections=50)) as c:
            answers = await asyncio.gather(
                *(c.get("/graph/v1.0/me/drives") for _ in range(CONCURRENT_FIRST_REQUESTS))
            )

        assert [a.status_code for a in answers] == [200] * CONCURRENT_FIRST_REQUESTS
        assert {tuple(d["driveAlias"] for d in a.json()["value"]) for a in answers} == {
            ("personal/richard",)
        }
        assert await count_rows(engine, "richard") == (1, 1)
    finally:
        await engine.dispose()


async def test_creators_racing_for_one_name_each_get_an_alias_on_postgresql(
    pg_registry: Registry,
) -> None:
    await hostile.creators_racing_for_one_name_each_get_an_alias(pg_registry)


async def test_numbers_past_int64_and_endless_filters_are_refused_on_postgresql(
    pg_registry: Registry,
) -> None:
    await hostile.quotas_past_int64_are_refused(pg_registry)
    await hostile.skiptokens_past_int64_are_refused(pg_registry)
    await hostile.filters_of_a_thousand_conditions_are_refused(pg_registry)


async def test_text_postgresql_cannot_hold_is_refused_on_postgresql(pg_registry: Registry) -> None:
    await hostile.text_with_control_characters_is_refused(pg_registry)
