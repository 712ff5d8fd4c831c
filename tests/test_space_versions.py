"""`spaces.version` and `listing_versions` on a real database: every write that changes what a
drive's JSON shows raises the space's version in the writing transaction, and the listing
versions of everyone holding a role in it as that transaction commits, whichever wing's store
makes it; a role lost and an incoming share raise the listing version of whom they concern;
others leave them be. On PostgreSQL two writers of spaces with members in common do not
deadlock on those versions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from registry.access.principal import GROUP, USER, PrincipalKey
from registry.auth import user_store
from registry.core.models import Space, table
from registry.shares import store as shares_store
from registry.spaces import availability, provider_store, store
from tests.databases import database_url, migrated_engine

__all__ = ["database_url"]  # a fixture

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SPACE = "a" * 32
OTHER = "b" * 32
MEMBER = "m" * 32
spaces = table(Space)

Write = Callable[[AsyncConnection, str], Awaitable[object]]


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    async with migrated_engine(database_url) as engine:
        async with engine.begin() as conn:
            user_id, _ = await user_store.upsert(
                conn, "https://idp", "marie", "marie", "Marie Curie", None, NOW
            )
            await store.insert(conn, _space(SPACE, "local"), NOW)
            await store.insert(conn, _space(OTHER, "elsewhere"), NOW)
            member = {"space_id": SPACE, "principal_type": "user", "role": "viewer"}
            await store.add_member(conn, {"id": MEMBER, "principal_id": user_id, **member}, NOW)
        yield engine


def _space(space_id: str, provider: str) -> dict[str, object]:
    return {
        "id": space_id,
        "alias": f"project/{space_id}",
        "name": "Physics",
        "drive_type": "project",
        "provider": provider,
        "root_id": space_id,
        "etag": '"1"',
        "created_by": "someone",
    }


async def version(engine: AsyncEngine, space_id: str) -> int:
    async with engine.connect() as conn:
        found = select(spaces.c.version).where(spaces.c.id == space_id)
        return int((await conn.execute(found)).scalar_one())


async def marie(conn: AsyncConnection) -> str:
    found = await user_store.find_by_subject(conn, "https://idp", "marie")
    assert found is not None
    return str(found.id)


async def rename(conn: AsyncConnection, _user: str) -> None:
    await store.update_space(conn, SPACE, {"name": "Chemistry"}, NOW)


async def provider_report(conn: AsyncConnection, _user: str) -> None:
    changed = await provider_store.record_content(conn, "local", SPACE, '"2"', 4096, NOW)
    assert changed is provider_store.Recorded.CHANGED


async def provider_unavailable(conn: AsyncConnection, _user: str) -> None:
    which = spaces.c.provider == "local"
    assert SPACE in await availability.set_state(conn, which, availability.UNAVAILABLE)


async def member_added(conn: AsyncConnection, _user: str) -> None:
    values = {"space_id": SPACE, "principal_type": "group", "principal_id": "physics"}
    await store.add_member(conn, {"id": "n" * 32, "role": "editor", **values}, NOW)


async def member_changed(conn: AsyncConnection, _user: str) -> None:
    await store.update_member(conn, MEMBER, {"role": "editor"})


async def member_removed(conn: AsyncConnection, _user: str) -> None:
    await store.delete_member(conn, MEMBER)


async def share_role_changed(conn: AsyncConnection, user: str) -> None:
    await shares_store.set_member_role(conn, SPACE, user, "manager")


async def display_name_changed(conn: AsyncConnection, _user: str) -> None:
    await user_store.upsert(conn, "https://idp", "marie", "marie", "Marie S. Curie", None, NOW)


async def listing_version(conn: AsyncConnection, *keys: PrincipalKey) -> int:
    """The sum of these keys' listing versions (each only rises)."""
    return sum(v for *_, v in await store.listing_versions_of(conn, frozenset(keys)))


async def listing_versions(engine: AsyncEngine) -> tuple[int, int, int]:
    """Marie's, the group physics's, and a stranger's listing versions."""
    async with engine.connect() as conn:
        user = await marie(conn)
        return (
            await listing_version(conn, PrincipalKey(USER, user)),
            await listing_version(conn, PrincipalKey(GROUP, "physics")),
            await listing_version(conn, PrincipalKey(USER, "stranger")),
        )


@pytest.mark.parametrize(
    "write",
    [
        rename,
        provider_report,
        provider_unavailable,
        member_added,
        member_changed,
        member_removed,
        share_role_changed,
        display_name_changed,
    ],
)
async def test_a_change_to_what_a_drive_shows_raises_its_version_in_the_same_transaction(
    engine: AsyncEngine, write: Write
) -> None:
    before, other_before = await version(engine, SPACE), await version(engine, OTHER)
    async with engine.begin() as conn:
        await write(conn, await marie(conn))
        inside = select(spaces.c.version).where(spaces.c.id == SPACE)
        assert (await conn.execute(inside)).scalar_one() > before
    assert await version(engine, SPACE) > before
    assert await version(engine, OTHER) == other_before


@pytest.mark.parametrize(
    "write",
    [
        rename,
        provider_report,
        provider_unavailable,
        member_changed,
        member_removed,
        share_role_changed,
        display_name_changed,
    ],
)
async def test_a_change_to_a_held_space_raises_its_holders_listing_versions(
    engine: AsyncEngine, write: Write
) -> None:
    user_before, _, stranger_before = await listing_versions(engine)
    async with engine.begin() as conn:
        await write(conn, await marie(conn))
    user_after, _, stranger_after = await listing_versions(engine)
    assert user_after > user_before
    assert stranger_after == stranger_before


async def test_a_role_gained_or_lost_raises_the_holders_listing_version(
    engine: AsyncEngine,
) -> None:
    _, group_before, _ = await listing_versions(engine)
    async with engine.begin() as conn:
        await member_added(conn, "")
    user_added, group_added, _ = await listing_versions(engine)
    assert group_added > group_before
    async with engine.begin() as conn:
        await store.delete_member(conn, "n" * 32)
    user_removed, group_removed, _ = await listing_versions(engine)
    assert group_removed > group_added
    assert user_removed > user_added  # marie still holds a role in the space, which changed


async def test_a_role_handed_to_another_raises_both_listing_versions(engine: AsyncEngine) -> None:
    before, group_before, _ = await listing_versions(engine)
    async with engine.begin() as conn:
        await store.update_member(
            conn, MEMBER, {"principal_type": GROUP, "principal_id": "physics"}
        )
    after, group_after, _ = await listing_versions(engine)
    assert after > before  # marie lost the role
    assert group_after > group_before  # the group gained it


async def test_a_deleted_space_raises_its_holders_listing_versions(engine: AsyncEngine) -> None:
    before, _, _ = await listing_versions(engine)
    async with engine.begin() as conn:
        await store.delete_space(conn, SPACE)
    after, _, _ = await listing_versions(engine)
    assert after > before


async def test_a_change_to_another_space_leaves_the_listing_versions(engine: AsyncEngine) -> None:
    before = await listing_versions(engine)
    async with engine.begin() as conn:
        await store.update_space(conn, OTHER, {"name": "Biology"}, NOW)
    assert await listing_versions(engine) == before


async def test_an_incoming_share_raises_the_recipients_listing_version(
    engine: AsyncEngine,
) -> None:
    async def received(conn: AsyncConnection, user: str) -> None:
        await shares_store.add_incoming(conn, _incoming(user), NOW)

    async def accepted(conn: AsyncConnection, _user: str) -> None:
        await shares_store.set_incoming(conn, "s" * 32, {"state": "accepted"}, NOW)

    async def removed(conn: AsyncConnection, _user: str) -> None:
        await shares_store.delete_incoming(conn, "s" * 32)

    for write in (received, accepted, removed):
        before, group_before, _ = await listing_versions(engine)
        async with engine.begin() as conn:
            await write(conn, await marie(conn))
        after, group_after, _ = await listing_versions(engine)
        assert after > before, write.__name__
        assert group_after == group_before


async def test_a_rolled_back_change_leaves_the_listing_versions(engine: AsyncEngine) -> None:
    before = await listing_versions(engine)
    async with engine.connect() as conn:
        await conn.begin()
        await rename(conn, "")
        await member_removed(conn, "")
        await conn.rollback()
    assert await listing_versions(engine) == before


def _incoming(user_id: str) -> dict[str, object]:
    return {
        "id": "s" * 32,
        "provider_id": "p1",
        "sender": "einstein@zurich.test",
        "owner": "einstein@zurich.test",
        "sender_name": "Albert Einstein",
        "owner_name": "Albert Einstein",
        "peer_domain": "zurich.test",
        "ocm_endpoint": "https://zurich.test/ocm",
        "user_id": user_id,
        "name": "Notes",
        "resource_type": "folder",
        "role": "viewer",
        "webdav_uri": "https://zurich.test/dav/p1",
        "secret": "secret",
        "state": "pending",
    }


async def test_a_rolled_back_change_leaves_the_version(engine: AsyncEngine) -> None:
    before = await version(engine, SPACE)
    async with engine.connect() as conn:
        await conn.begin()
        await rename(conn, "")
        await conn.rollback()
    assert await version(engine, SPACE) == before


async def test_a_user_seen_again_unchanged_or_with_a_new_email_leaves_the_version(
    engine: AsyncEngine,
) -> None:
    before = await version(engine, SPACE)
    async with engine.begin() as conn:
        await user_store.upsert(conn, "https://idp", "marie", "marie", "Marie Curie", None, NOW)
        await user_store.upsert(
            conn, "https://idp", "marie", "marie", "Marie Curie", "marie@example.org", NOW
        )
    assert await version(engine, SPACE) == before


async def test_every_update_raises_the_version_by_one(engine: AsyncEngine) -> None:
    before = await version(engine, SPACE)
    async with engine.begin() as conn:
        await rename(conn, "")
        await member_changed(conn, "")
    assert await version(engine, SPACE) == before + 2


@pytest.mark.postgres
async def test_writers_of_spaces_with_members_in_common_neither_deadlock_nor_wait(
    postgres_url: str,
) -> None:
    """Each of two transactions changes two spaces, one held by einstein and one by marie, in
    opposite orders: raising the listing versions as the changes came would lock einstein's
    row in one and marie's in the other, and each would wait for the other."""
    held_by = {"1" * 32: "einstein", "2" * 32: "marie", "3" * 32: "marie", "4" * 32: "einstein"}
    async with migrated_engine(postgres_url) as engine:
        async with engine.begin() as conn:
            for n, (space_id, user) in enumerate(held_by.items()):
                await store.insert(conn, _space(space_id, "local"), NOW)
                member = {"id": f"{n}" * 32, "space_id": space_id, "principal_type": USER}
                await store.add_member(
                    conn, {**member, "principal_id": user, "role": "viewer"}, NOW
                )
        before = await _versions_of(engine, "einstein", "marie")
        first, second = await engine.connect(), await engine.connect()
        try:
            await first.begin()
            await second.begin()
            spaces_first, spaces_second = ("1" * 32, "3" * 32), ("2" * 32, "4" * 32)
            for first_space, second_space in zip(spaces_first, spaces_second, strict=True):
                for conn, space_id in ((first, first_space), (second, second_space)):
                    renamed = store.update_space(conn, space_id, {"name": "Renamed"}, NOW)
                    await asyncio.wait_for(renamed, 5)  # no change waits on the other writer
            await asyncio.wait_for(asyncio.gather(first.commit(), second.commit()), 10)
        finally:
            await first.close()
            await second.close()
        after = await _versions_of(engine, "einstein", "marie")
        assert [a - b for a, b in zip(after, before, strict=True)] == [2, 2]


async def _versions_of(engine: AsyncEngine, *users: str) -> list[int]:
    async with engine.connect() as conn:
        return [await listing_version(conn, PrincipalKey(USER, user)) for user in users]
