"""Notice changes made below the provider root by anyone: WebDAV clients, local programs, sync
tools. Changes are grouped by space (the first path component) and reported in batches."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Collection, Coroutine
from pathlib import Path
from typing import Any

from watchfiles import Change, awatch

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

    def in_space(path: str) -> tuple[str, str] | None:
        relative = os.path.relpath(path, top)
        space_id, _, rest = relative.replace(os.sep, "/").partition("/")
        return (space_id, "/" + rest) if is_space(space_id) else None

    def wanted(_change: Change, path: str) -> bool:
        return in_space(path) is not None

    batches = awatch(top, watch_filter=wanted, step=STEP_MS, debounce=DEBOUNCE_MS)
    async for batch in batches:
        by_space: dict[str, set[str]] = {}
        for _change, path in batch:
            found = in_space(path)
            if found is not None:
                by_space.setdefault(found[0], set()).add(found[1])
        async with asyncio.TaskGroup() as group:
            for space_id, paths in by_space.items():
                group.create_task(changed(space_id, paths))


def _prepare(root: Path) -> str:
    root.mkdir(parents=True, exist_ok=True)
    return os.path.abspath(root)
