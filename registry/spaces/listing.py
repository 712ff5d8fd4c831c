"""The drive listing from encoded drives kept by space version, and a caller's held drives
answered again while their listing versions stand.

Encoding a page of drives costs several times more than finding which spaces are on it, so the
listing reads only each space's id and `version` (which the database raises with every change to
what the drive shows, in the changing transaction) and reuses the JSON it encoded for that
version. A replica whose copy is older sees a different version and encodes again: no cache is
shared and nothing needs invalidating. A drive's JSON holds nothing of the caller (every member
sees the same `root.permissions`), so one encoding serves every user who sees the space.

Finding the page is itself most of a listing's cost (the statement, and the rows read through
the driver), so `HeldDrives` first reads only the listing versions of the caller's keys (which
the database raises with every change to a space they hold, to the roles they hold and to a
user's incoming shares) and answers the page it answered last while those stand and no role
on it has ended. The same holds across replicas: each keeps its own pages.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from registry.access import rule
from registry.access.principal import Principal, PrincipalKey
from registry.core.clock import Clock
from registry.spaces import store
from registry.spaces.drive_json import drive
from registry.spaces.odata import PageQuery
from registry.spaces.service import SpaceService

# Encoded drives kept per naming of roles, each about 1.4 KB: some 70 MB at most.
ENCODED_DRIVES_KEPT = 25_000
# The pages answered kept, counted as if no two of them shared an encoded drive (they do: a
# drive seen by many users is kept once), so that the memory they hold stays below this; each
# also counts for what keeping it costs beside its drives (an empty page is no free entry).
PAGES_BYTES_KEPT = 256 * 2**20
PAGE_OVERHEAD_BYTES = 1024

# Drives that are no space of ours, listed first among the caller's (the shares wing's
# virtual Shares drive), as drive JSON, read on the listing's connection.
VirtualDrives = Callable[[AsyncConnection, Principal], Awaitable[list[dict[str, Any]]]]


async def no_virtual_drives(conn: AsyncConnection, principal: Principal) -> list[dict[str, Any]]:
    return []


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


@dataclass(frozen=True, slots=True)
class Page:
    """A page of a caller's held drives: the virtual ones first, encoded; whether more follow."""

    virtual: list[bytes]
    drives: list[bytes]
    more: bool


# Whose page: the caller's keys, which page and filter, whether roles are named by id.
_PageKey = tuple[frozenset[PrincipalKey], PageQuery, bool]


@dataclass(frozen=True, slots=True)
class _Answered:
    versions: tuple[tuple[str, str, int], ...]
    until: datetime | None  # when the first role on it ends
    page: Page
    size: int  # its encoded drives' bytes and its overhead


class HeldDrives:
    """Pages of the drives callers hold a role in (`/me/drives`), each answered again while
    the listing versions of the caller's keys stand."""

    def __init__(
        self,
        listing: DriveListing,
        clock: Clock,
        virtual: VirtualDrives = no_virtual_drives,
        kept_bytes: int = PAGES_BYTES_KEPT,
    ) -> None:
        self._listing = listing
        self._clock = clock
        self._virtual = virtual
        self._kept_bytes = kept_bytes
        self._bytes = 0
        self._answered: dict[_PageKey, _Answered] = {}

    async def page(
        self, conn: AsyncConnection, principal: Principal, query: PageQuery, unified_roles: bool
    ) -> Page:
        """The caller's page; `conn` is from `SpaceService.reading()`."""
        # Versions first: a page found after them is as new as they are, or newer.
        versions = await store.listing_versions_of(conn, principal.keys)
        now = self._clock.now()
        key = (principal.keys, query, unified_roles)
        found = self._answered.get(key)
        if found is not None and found.versions == versions and rule.live(found.until, now):
            self._answered[key] = self._answered.pop(key)  # kept again last: evicted last
            return found.page
        drives, more = await self._listing.page(
            conn, principal, query, unified_roles, held_only=True
        )
        where, _order, offset = query
        virtual = await self._virtual(conn, principal) if offset == 0 and where is None else []
        page = Page([orjson.dumps(d) for d in virtual], drives, more)
        until = await store.first_role_end(conn, principal.keys, now)
        size = PAGE_OVERHEAD_BYTES + sum(map(len, page.virtual)) + sum(map(len, page.drives))
        self._keep(key, _Answered(versions, until, page, size))
        return page

    def _keep(self, key: _PageKey, answered: _Answered) -> None:
        replaced = self._answered.pop(key, None)  # stale, or answered meanwhile alike
        if replaced is not None:
            self._bytes -= replaced.size
        self._answered[key] = answered
        self._bytes += answered.size
        while self._bytes > self._kept_bytes:
            self._bytes -= self._answered.pop(next(iter(self._answered))).size
