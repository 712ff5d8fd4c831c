"""Notice changes made below the provider root by anyone: WebDAV clients, local programs, sync
tools. Changes are grouped by space (the first path component) and reported in batches."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Collection, Coroutine, Iterable
from pathlib import Path
from typing import Any

from watchfiles import awatch

# A batch ends after STEP_MS without a new change, or DEBOUNCE_MS after its first one, so a
# change is reported well within a second even while a space keeps changing.
STEP_MS = 50
DEBOUNCE_MS = 300

SpaceChanged = Callable[[str, Collection[str]], Coroutine[Any, Any, None]]


async def watch_spaces(root: Path, is_space: Callable[[str], bool], changed: SpaceChanged) -> None:
    """Call `changed(space_id, paths)` for each space with changes in a batch, paths relative
    to the space and starting with "/"; spaces of a batch are handled concurrently. Runs until
    cancelled. Folders under `root` that `is_space` refuses are not reported."""
    top = await asyncio.to_thread(_prepare, root)
    # Paths are sorted by space once, below: a watchfiles filter (by default one that drops
    # names such as .git or *.swp) would be a second pass over the same paths.
    batches = awatch(top, watch_filter=None, step=STEP_MS, debounce=DEBOUNCE_MS)
    async for batch in batches:
        by_space = _by_space(top, (path for _change, path in batch), is_space)
        async with asyncio.TaskGroup() as group:
            for space_id, paths in by_space.items():
                group.create_task(changed(space_id, paths))


def _by_space(
    top: str, paths: Iterable[str], is_space: Callable[[str], bool]
) -> dict[str, set[str]]:
    by_space: dict[str, set[str]] = {}
    for path in paths:
        space_id, _, rest = os.path.relpath(path, top).replace(os.sep, "/").partition("/")
        if is_space(space_id):
            by_space.setdefault(space_id, set()).add("/" + rest)
    return by_space


def _prepare(root: Path) -> str:
    root.mkdir(parents=True, exist_ok=True)
    return os.path.abspath(root)
