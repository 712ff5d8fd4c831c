"""How many bytes a write may still put in a space: the quota less what the back end says is
used (our copy lags behind a burst of writes), plus what the write replaces."""

from __future__ import annotations

from registry.core.errors import Unavailable
from registry.spaces.dav_backends import SpaceSizes
from storage import PathNotFound, StorageError


async def room(sizes: SpaceSizes, space_id: str, path: str, total: int | None) -> int | None:
    """The bytes a PUT of `path` may write; None when the space has no quota."""
    if not total:
        return None
    try:
        used = (await sizes.get_space(space_id)).used
        try:
            replaced = (await sizes.stat(space_id, path)).size
        except PathNotFound:
            replaced = 0
    except StorageError as exc:
        raise Unavailable(f"the storage could not tell the space's usage: {exc}") from exc
    return total - used + replaced


def over_quota(size: int, allowed: int) -> str:
    return f"the file ({size} bytes) does not fit in the space's quota ({allowed} bytes left)"
