"""`DriveListing` in one process: it keeps no more encoded drives than it is given room for,
and a page is whole whatever it had to forget."""

from __future__ import annotations

import orjson

from registry.access.principal import Principal
from registry.spaces.listing import DriveListing
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
