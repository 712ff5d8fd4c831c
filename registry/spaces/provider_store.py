"""What providers report about the spaces they hold: root ETag, usage, reachability."""

from __future__ import annotations

import enum
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from registry.changes import log as changes
from registry.core.models import Space, table
from registry.spaces.store import update_space

spaces = table(Space)

# How many of a space's latest changes are read for the paths logged at the ETag it holds.
LOGGED_AT_ETAG_MAX = 20


@dataclass(frozen=True)
class HeldSpace:
    """A space a provider holds, with the ETag and usage we hold for it."""

    space_id: str
    provider: str
    etag: str
    used: int


async def held_spaces(
    conn: AsyncConnection, providers: Collection[str], after: str, limit: int
) -> list[HeldSpace]:
    """Up to `limit` of the spaces these providers hold (share spaces are folders of those),
    in id order after the id `after` ("": from the first)."""
    rows = await conn.execute(
        select(spaces.c.id, spaces.c.provider, spaces.c.etag, spaces.c.quota_used)
        .where(
            spaces.c.parent_id.is_(None),
            spaces.c.provider.in_(providers),
            spaces.c.id > after,
        )
        .order_by(spaces.c.id)
        .limit(limit)
    )
    return [HeldSpace(*row) for row in rows]


class Recorded(enum.Enum):
    """What a provider's report of a space's content did to our copy."""

    UNKNOWN = "unknown"  # the space is not this provider's (or is gone)
    UNCHANGED = "unchanged"  # we held that ETag and usage already
    CHANGED = "changed"


async def record_content(
    conn: AsyncConnection, provider: str, space_id: str, etag: str, used: int, now: datetime
) -> Recorded:
    """Store a space's new ETag and usage, locking the space's row for the caller's
    transaction."""
    found = (
        await conn.execute(
            select(spaces.c.etag, spaces.c.quota_used)
            .where(spaces.c.id == space_id, spaces.c.provider == provider)
            .with_for_update()
        )
    ).first()
    if found is None:
        return Recorded.UNKNOWN
    if (found.etag, found.quota_used) == (etag, used):
        return Recorded.UNCHANGED
    await update_space(conn, space_id, {"etag": etag, "quota_used": used}, now)
    return Recorded.CHANGED


async def unlogged_paths(
    conn: AsyncConnection, space_id: str, etag: str, paths: Sequence[str]
) -> list[str]:
    """Of `paths`, reported changed in the state `etag` that the space holds already, those
    that no change logged since it came to hold it names. A cut list of paths, or the
    space's creation, name every path; `/` does not (a watcher's report of the space's
    folder): a write's own report after it still names its path. Only the latest
    LOGGED_AT_ETAG_MAX such changes are read: a path named further back is logged again,
    never lost."""
    if not paths:  # a reconciliation's report names none: nothing to look up
        return []
    named: set[str] = set()
    for kind, data in await changes.latest_of_space(
        conn, space_id, ("created", "content"), LOGGED_AT_ETAG_MAX
    ):
        if data.get("etag") != etag:
            break
        if kind == "created" or data.get("pathsTruncated"):
            return []
        named.update(data.get("paths", ()))
    return [path for path in paths if path not in named]


async def share_spaces_of(conn: AsyncConnection, parent_id: str) -> list[tuple[str, str, int]]:
    """(id, folder, usage) of the share spaces made of folders of the space `parent_id`."""
    rows = await conn.execute(
        select(spaces.c.id, spaces.c.parent_path, spaces.c.quota_used).where(
            spaces.c.parent_id == parent_id
        )
    )
    return [(space_id, folder, used) for space_id, folder, used in rows]


def paths_below(folder: str, paths: Sequence[str]) -> list[str]:
    """Of `paths` in a space, those in `folder`, as paths below it (`/`: the folder itself,
    or anything in the space)."""
    folder = "/" + folder.strip("/")
    below = []
    for path in paths:
        if path == "/" or path == folder:
            below.append("/")
        elif path.startswith(folder + "/"):
            below.append(path[len(folder) :])
    return list(dict.fromkeys(below))
