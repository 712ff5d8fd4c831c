"""The access rule (`registry.access.rule`): SQL and memory say the same, for every kind of
principal, and a federated user's key matches only the member rows that name it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from registry.access import rule
from registry.access.principal import GROUP, PRINCIPAL_TYPES, REMOTE, USER, PrincipalKey
from registry.core.models import Base, ChangeAudience, ChangeRecord, Member, Peer, table
from registry.runtime.db import create_engine
from registry.spaces import store
from registry.spaces.views import group_rows

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
MARIE_IN_PARIS = PrincipalKey(REMOTE, "marie@paris.test")

# Space id to its members: (type, id, role, expires at).
SPACES = {
    # A mountpoint of a space the peer paris.test holds, shared with marie there.
    "held-by-paris": [(REMOTE, "marie@paris.test", "viewer", None), (USER, "u1", "manager", None)],
    # The same address, but naming one of our users, or a group: not marie in Paris.
    "local-namesake": [(USER, "marie@paris.test", "editor", None)],
    "group-namesake": [(GROUP, "marie@paris.test", "editor", None)],
    # Another registry's marie.
    "lyon": [(REMOTE, "marie@lyon.test", "manager", None)],
    # Marie in Paris, until an hour before now.
    "lapsed": [(REMOTE, "marie@paris.test", "editor", NOW - timedelta(hours=1))],
}


@pytest.fixture
async def conn(tmp_path: Path) -> AsyncIterator[AsyncConnection]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'rule.db'}")
    try:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
            await _fill(conn)
            yield conn
    finally:
        await engine.dispose()


async def _fill(conn: AsyncConnection) -> None:
    await conn.execute(
        table(Peer)
        .insert()
        .values(id="paris", domain="paris.test", base_url="https://paris.test", created_at=NOW)
    )
    for space_id, space_members in SPACES.items():
        peer = space_id == "held-by-paris"
        await store.insert(
            conn,
            {
                "id": space_id,
                "alias": f"project/{space_id}",
                "name": space_id,
                "drive_type": "mountpoint" if peer else "project",
                "provider": "paris.test" if peer else "local",
                "root_id": space_id,
                "etag": '"1"',
                "remote_peer_id": "paris" if peer else None,
                "remote_url": "https://paris.test/dav/spaces/x" if peer else None,
            },
            NOW,
        )
        for n, (kind, principal_id, role, expires_at) in enumerate(space_members):
            await store.add_member(
                conn,
                {
                    "id": f"{space_id}-{n}",
                    "space_id": space_id,
                    "principal_type": kind,
                    "principal_id": principal_id,
                    "role": role,
                    "expires_at": expires_at,
                },
                NOW,
            )


async def _sql(conn: AsyncConnection, keys: frozenset[PrincipalKey], now: datetime) -> set[str]:
    """The spaces held, through each SQL form of the rule: they must agree."""
    held = set((await conn.execute(rule.spaces_held(keys, now))).scalars())
    mapped = await rule.held_spaces(conn, keys, now)
    listed = group_rows(await store.list_page(conn, keys, now, None, None, 0, 100))
    assert set(mapped) == {view.space.id for view in listed} == held
    return held


async def _memory(
    conn: AsyncConnection, keys: frozenset[PrincipalKey], now: datetime
) -> dict[str, str]:
    """The role held in each space, by the in-memory rule over the space as loaded."""
    found = {}
    for space_id in SPACES:
        [view] = group_rows(await store.get_with_members(conn, space_id))
        role = rule.role_held(keys, view.members, now)
        if role is not None:
            found[space_id] = role
    return found


async def test_a_federated_key_matches_only_the_member_rows_naming_it(conn):
    keys = frozenset([MARIE_IN_PARIS])
    assert await _sql(conn, keys, NOW) == {"held-by-paris"}
    assert await _memory(conn, keys, NOW) == {"held-by-paris": "viewer"}


async def test_a_federated_role_ends_at_its_expiry_in_sql_and_in_memory(conn):
    keys = frozenset([MARIE_IN_PARIS])
    before = NOW - timedelta(hours=2)
    assert await _sql(conn, keys, before) == {"held-by-paris", "lapsed"}
    assert await _memory(conn, keys, before) == {"held-by-paris": "viewer", "lapsed": "editor"}
    held = await rule.held_spaces(conn, keys, before)
    assert rule.still_held(held, "lapsed", before)
    assert not rule.still_held(held, "lapsed", NOW - timedelta(hours=1))
    assert not rule.still_held(held, "lyon", before)


async def test_keys_of_several_types_hold_the_best_role_among_them(conn):
    keys = frozenset(
        [MARIE_IN_PARIS, PrincipalKey(USER, "u1"), PrincipalKey(GROUP, "marie@paris.test")]
    )
    assert await _sql(conn, keys, NOW) == {"held-by-paris", "group-namesake"}
    assert await _memory(conn, keys, NOW) == {
        "held-by-paris": "manager",
        "group-namesake": "editor",
    }


async def test_a_change_audience_is_matched_by_type_and_id(conn):
    audience = table(ChangeAudience)
    await conn.execute(
        table(ChangeRecord).insert(),
        [
            {
                "seq": seq,
                "space_id": "lyon",
                "kind": "member_removed",
                "payload": {},
                "created_at": NOW,
            }
            for seq in (1, 2)
        ],
    )
    await conn.execute(
        audience.insert(),
        [
            {"seq": 1, "principal_type": REMOTE, "principal_id": "marie@paris.test"},
            {"seq": 2, "principal_type": USER, "principal_id": "marie@paris.test"},
        ],
    )
    named = rule.naming(audience.c.principal_type, audience.c.principal_id, [MARIE_IN_PARIS])
    assert list((await conn.execute(select(audience.c.seq).where(named))).scalars()) == [1]


def test_an_unknown_kind_of_principal_is_refused():
    with pytest.raises(ValueError, match="unknown principal type"):
        rule.holding([PrincipalKey("robot", "r2")], NOW)


def test_every_kind_of_principal_fits_the_columns_that_name_it():
    for column in (table(Member).c.principal_type, table(ChangeAudience).c.principal_type):
        assert all(len(kind) <= column.type.length for kind in PRINCIPAL_TYPES)
