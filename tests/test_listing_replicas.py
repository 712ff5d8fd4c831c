"""The drive listing keeps encoded drives per replica, by space version: two registries on one
PostgreSQL database each keep their own, and after every kind of change made through one the
other's listing shows it, for every user, exactly as its uncached `GET /drives/{id}` does."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx2
import pytest
from sqlalchemy import select

from registry.auth import user_store
from registry.core.models import User, table
from registry.runtime.db import create_engine
from registry.spaces import availability
from registry.spaces.store import spaces
from tests.conftest import Registry, running_registry
from tests.test_dav_gateway import dav
from tests.test_drives_api import create_project
from tests.test_permissions_api import EDITOR, VIEWER, invite, root
from tests.waiting import eventually

pytestmark = pytest.mark.postgres

USERS = ("einstein", "marie", "admin")
users = table(User)


@pytest.fixture
def replicas(tmp_path: Path, idp_key_dir: Path, postgres_url: str) -> Iterator[list[Registry]]:
    # Behind one load balancer both answer for one URL (and so one IdP issuer).
    base_url = "http://127.0.0.1:9"
    shared = {"database_url": postgres_url, "base_url": base_url}
    with (
        running_registry(tmp_path / "a", idp_key_dir, **shared) as a,
        running_registry(tmp_path / "b", idp_key_dir, **shared) as b,
    ):
        yield [a, b]


@pytest.fixture
async def clients(replicas: list[Registry]) -> AsyncIterator[dict[str, Any]]:
    """`name@a` and `name@b` for every user: their clients of either replica."""
    async with AsyncExitStack() as stack:
        found: dict[str, Any] = {}
        for where, registry in zip("ab", replicas, strict=True):
            for user in USERS:
                found[f"{user}@{where}"] = await stack.enter_async_context(registry.client(user))
        yield found


async def listed(client: httpx2.AsyncClient, space_id: str, version: str = "v1.0") -> Any:
    """The space as the caller's listing shows it (None: not listed), checked against the
    same replica's answer for that one drive, which is encoded afresh."""
    listing = await client.get(f"/graph/{version}/me/drives")
    assert listing.status_code == 200, listing.text
    found = [d for d in listing.json()["value"] if d["id"] == space_id]
    one = await client.get(f"/graph/{version}/drives/{space_id}")
    if not found:
        assert one.status_code == 404, one.text
        return None
    assert found == [one.json()]
    return found[0]


async def seen_by_all(clients: dict[str, Any], space_id: str, version: str = "v1.0") -> Any:
    """What every user's listing at replica b shows of the space (the same for all)."""
    shown = [await listed(clients[f"{user}@b"], space_id, version) for user in USERS]
    assert shown[1:] == shown[:-1]
    return shown[0]


def roles(drive: dict[str, Any]) -> dict[str, list[str]]:
    return {
        p["grantedToV2"]["user"]["displayName"]: p["roles"] for p in drive["root"]["permissions"]
    }


async def test_every_kind_of_change_through_one_replica_is_listed_by_the_other(
    clients: dict[str, Any], postgres_url: str
) -> None:
    admin = clients["admin@a"]
    project = await create_project(admin, "Physics")
    space_id = project["id"]
    await invite(admin, space_id, "einstein", VIEWER)
    marie_permission = (await invite(admin, space_id, "marie", EDITOR)).json()["value"][0]
    first = await seen_by_all(clients, space_id)  # b has encoded it now
    assert roles(first) == {
        "Administrator": ["manager"],
        "Albert Einstein": ["viewer"],
        "Marie Curie": ["editor"],
    }

    renamed = await admin.patch(f"/graph/v1.0/drives/{space_id}", json={"name": "Chemistry"})
    assert renamed.status_code == 200
    assert (await seen_by_all(clients, space_id))["name"] == "Chemistry"

    described = await admin.patch(f"/graph/v1.0/drives/{space_id}", json={"description": "Lab"})
    assert described.status_code == 200
    assert (await seen_by_all(clients, space_id))["description"] == "Lab"

    quota = await admin.patch(f"/graph/v1.0/drives/{space_id}", json={"quota": {"total": 4096}})
    assert quota.status_code == 200
    assert (await seen_by_all(clients, space_id))["quota"]["total"] == 4096

    before = await seen_by_all(clients, space_id)
    written = await admin.put(dav(space_id, "notes.txt"), content=b"x" * 1000)
    assert written.status_code == 201
    # The provider's report of the write is applied by a worker of replica a.
    assert await eventually(lambda: _reported(clients, space_id, before["root"]["eTag"]), 15)
    assert (await seen_by_all(clients, space_id))["quota"]["used"] == 1000

    permission_url = f"{root(space_id)}/permissions/{marie_permission['id']}"
    changed = await admin.patch(permission_url, json={"roles": [VIEWER]})
    assert changed.status_code == 200
    assert roles(await seen_by_all(clients, space_id))["Marie Curie"] == ["viewer"]
    assert roles(await seen_by_all(clients, space_id, "v1beta1"))["Marie Curie"] == [VIEWER]

    added = await invite(admin, space_id, "richard", EDITOR)
    assert added.status_code == 200
    assert roles(await seen_by_all(clients, space_id))["Richard Feynman"] == ["editor"]

    engine = create_engine(postgres_url)
    try:
        async with engine.begin() as conn:  # marie signs in with a new name in her token
            marie = (await conn.execute(select(users).where(users.c.username == "marie"))).one()
            await user_store.upsert(
                conn, marie.issuer, marie.subject, "marie", "Marie S. Curie", None, marie.created_at
            )
        assert "Marie S. Curie" in roles(await seen_by_all(clients, space_id))

        async with engine.begin() as conn:  # the provider holding it cannot be reached
            which = spaces.c.provider == "local"
            assert space_id in await availability.set_state(conn, which, availability.UNAVAILABLE)
        assert (await seen_by_all(clients, space_id))["availability"] == "unavailable"
    finally:
        await engine.dispose()

    removed = await admin.delete(permission_url)
    assert removed.status_code == 204
    assert await listed(clients["marie@b"], space_id) is None
    assert "Marie S. Curie" not in roles(await seen_by_all_but_marie(clients, space_id))

    assert (await admin.delete(f"/graph/v1.0/drives/{space_id}")).status_code == 204
    assert (await seen_by_all_but_marie(clients, space_id))["root"]["deleted"] == {
        "state": "trashed"
    }
    restored = await admin.patch(f"/graph/v1.0/drives/{space_id}", headers={"Restore": "T"})
    assert restored.status_code == 200
    assert "deleted" not in (await seen_by_all_but_marie(clients, space_id))["root"]

    assert (await admin.delete(f"/graph/v1.0/drives/{space_id}")).status_code == 204
    purged = await admin.delete(f"/graph/v1.0/drives/{space_id}", headers={"Purge": "T"})
    assert purged.status_code == 204
    for user in USERS:
        assert await listed(clients[f"{user}@b"], space_id) is None


async def test_each_naming_of_roles_is_kept_apart(clients: dict[str, Any]) -> None:
    admin = clients["admin@a"]
    space_id = (await create_project(admin, "Optics"))["id"]
    await invite(admin, space_id, "einstein", EDITOR)
    by_name = await listed(clients["einstein@b"], space_id)
    by_id = await listed(clients["einstein@b"], space_id, "v1beta1")
    assert roles(by_name)["Albert Einstein"] == ["editor"]
    assert roles(by_id)["Albert Einstein"] == [EDITOR]
    assert roles(await listed(clients["einstein@b"], space_id))["Albert Einstein"] == ["editor"]


async def _reported(clients: dict[str, Any], space_id: str, etag: str) -> bool:
    drive = await clients["admin@b"].get(f"/graph/v1.0/drives/{space_id}")
    return bool(drive.json()["root"]["eTag"] != etag)


async def seen_by_all_but_marie(clients: dict[str, Any], space_id: str) -> Any:
    shown = [await listed(clients[f"{user}@b"], space_id) for user in ("einstein", "admin")]
    assert shown[0] == shown[1]
    return shown[0]
