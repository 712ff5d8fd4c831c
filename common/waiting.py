"""Waiting for an event with a deadline, in loops that run until they are cancelled, and for
tasks to end once cancelled.

Not `asyncio.wait_for`: on Python 3.11 it swallows a cancellation that arrives just as the
awaited event is set (the wait returns as if woken), so a loop waiting with it can outlive its
`cancel()` and a shutdown that awaits it hangs. `asyncio.timeout` tells its own deadline
from a cancellation and lets the latter through."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Any


async def set_within(event: asyncio.Event, seconds: float | None) -> bool:
    """Wait until `event` is set or `seconds` pass (None: no deadline); True if it was set."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True


async def cancel_all(
    tasks: Collection[asyncio.Task[Any]], within_s: float | None = None
) -> set[asyncio.Task[Any]]:
    """Cancel `tasks` and wait until they end or `within_s` passes (None: until they end);
    the ones still running. A cancel of the waiting itself goes through."""
    for task in tasks:
        task.cancel()
    if not tasks:
        return set()
    _, running = await asyncio.wait(tasks, timeout=within_s)
    return running
