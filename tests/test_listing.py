"""`DriveListing` and `HeldDrives` in one process: they keep no more than they are given room
for, a page is whole whatever they had to forget, and a page answered again costs one
statement until the caller's listing versions move."""

from __future__ import annotations

import orjson
from sqlalchemy import event

from registry.access.principal import Principal
from registry.core.clock import SYSTEM_CLOCK
from registry.spaces.listing import DriveListing, HeldDrives
from tests.conftest import Registry
from tests.test_drives_api import create_project, user_id


async def test_a_listing_with_room_for_two_drives_still_lists_every_drive(
    registry: Registry, admin
) -> None:
    made = [(await create_project(admin, f"Project {n}"))["id"] for n in range(3)]
    services = registry.app.state.services
    listing = DriveListing(services.spaces, registry.settings.base_url, kept=2)
    principal = Principal(await user_id(registry, "admin"), "admin", "Administrator", (), True)
    for _ in range(2):  # the second time from what it kept, and what it had to encode again
        async with services.spaces.reading() as conn:
            drives, more = await listing.page(
                conn, principal, (None, None, 0), False, held_only=False
            )
        listed = [orjson.loads(d) for d in drives]
        assert set(made) <= {d["id"] for d in listed}
        assert not more
        assert len(listing._encoded[False]) == 2
        assert listing._encoded[True] == {}


async def test_a_page_is_answered_again_with_one_statement_until_the_callers_versions_move(
    registry: Registry, admin
) -> None:
    """`HeldDrives` reads only the caller's listing versions while nothing they hold changed,
    keeps pages apart by query and naming of roles, and keeps no more bytes than given."""
    made = (await create_project(admin, "Kept"))["id"]
    services = registry.app.state.services
    listing = DriveListing(services.spaces, registry.settings.base_url)
    held = HeldDrives(listing, SYSTEM_CLOCK)
    principal = Principal(await user_id(registry, "admin"), "admin", "Administrator", (), True)
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    async def page(unified_roles: bool = False) -> list[dict[str, object]]:
        statements.clear()
        async with services.spaces.reading() as conn:
            found = await held.page(conn, principal, (None, None, 0), unified_roles)
        return [orjson.loads(d) for d in [*found.virtual, *found.drives]]

    event.listen(services.engine.sync_engine, "before_cursor_execute", count)
    try:
        first = await page()
        assert made in {d["id"] for d in first}
        assert len(statements) > 1
        assert await page() == first
        assert len(statements) == 1 and "listing_versions" in statements[0]
        assert await page(unified_roles=True) != first  # a page of its own: roles by id
        assert len(statements) > 1
        renamed = await admin.patch(f"/graph/v1.0/drives/{made}", json={"name": "Renamed"})
        assert renamed.status_code == 200
        names = {d["id"]: d["name"] for d in await page()}
        assert names[made] == "Renamed"
        assert len(statements) > 1
    finally:
        event.remove(services.engine.sync_engine, "before_cursor_execute", count)

    small = HeldDrives(listing, SYSTEM_CLOCK, kept_bytes=1)  # room for no page at all
    async with services.spaces.reading() as conn:
        for unified_roles in (False, True, False):
            answered = await small.page(conn, principal, (None, None, 0), unified_roles)
            assert made in {orjson.loads(d)["id"] for d in answered.drives}
    assert (small._answered, small._bytes) == ({}, 0)
