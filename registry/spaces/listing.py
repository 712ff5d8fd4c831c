"""The drive listing from encoded drives kept by space version.

Encoding a page of drives costs several times more than finding which spaces are on it, so the
listing reads only each space's id and `version` (which the database raises with every change to
what the drive shows, in the changing transaction) and reuses the JSON it encoded for that
version. A replica whose copy is older sees a different version and encodes again: no cache is
shared and nothing needs invalidating. A drive's JSON holds nothing of the caller (every member
sees the same `root.permissions`), so one encoding serves every user who sees the space.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from registry.access.principal import Principal
from registry.spaces.drive_json import drive
from registry.spaces.odata import PageQuery
from registry.spaces.service import SpaceService

# Encoded drives kept per naming of roles, each about 1.4 KB: some 70 MB at most.
ENCODED_DRIVES_KEPT = 25_000


@dataclass(frozen=True, slots=True)
class Encoded:
    version: int
    json: bytes


class DriveListing:
    """Pages of drives as encoded JSON, each drive encoded once per version of its space."""

    def __init__(
        self, spaces: SpaceService, base_url: str, kept: int = ENCODED_DRIVES_KEPT
    ) -> None:
        self._spaces = spaces
        self._base_url = base_url
        self._kept = kept
        # By whether roles are named by unified role id (v1beta1) or by name (v1.0).
        self._encoded: dict[bool, dict[str, Encoded]] = {False: {}, True: {}}

    async def page(
        self,
        conn: AsyncConnection,
        principal: Principal,
        query: PageQuery,
        unified_roles: bool,
        *,
        held_only: bool,
    ) -> tuple[list[bytes], bool]:
        """The caller's page of drives (as `SpaceService.list_visible` finds them), encoded;
        and whether more follow. `conn` is from `SpaceService.reading()`."""
        versions, more = await self._spaces.list_versions(conn, principal, query, held_only)
        encoded = self._encoded[unified_roles]
        current = {}
        stale = []
        for space_id, version in versions:
            found = encoded.get(space_id)
            if found is not None and found.version >= version:
                current[space_id] = found
            else:
                stale.append(space_id)
        if stale:
            current.update(await self._encode(conn, stale, encoded, unified_roles))
        return [found.json for space_id, _ in versions if (found := current.get(space_id))], more

    async def _encode(
        self,
        conn: AsyncConnection,
        space_ids: list[str],
        encoded: dict[str, Encoded],
        unified_roles: bool,
    ) -> dict[str, Encoded]:
        """Encode these spaces as they are now and keep them (a space gone since is left
        out)."""
        fresh = {}
        for view in await self._spaces.views_of(conn, space_ids):
            space = view.space
            fresh[space.id] = Encoded(
                space.version, orjson.dumps(drive(view, self._base_url, unified_roles))
            )
        for space_id, found in fresh.items():
            encoded.pop(space_id, None)  # kept last, evicted last
            encoded[space_id] = found
        while len(encoded) > self._kept:
            del encoded[next(iter(encoded))]
        return fresh
