"""Waiting in async tests for something that happens in the background."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    probe: Callable[[], T | Awaitable[T]], seconds: float = 10.0, interval: float = 0.05
) -> T:
    """Call `probe` (plain or async) until its answer is truthy or `seconds` have passed, and
    return its last answer, for the test to assert on: `assert await eventually(...)`."""
    deadline = time.monotonic() + seconds
    while True:
        answer = probe()
        if inspect.isawaitable(answer):
            answer = await answer
        if answer or time.monotonic() >= deadline:
            return answer
        await asyncio.sleep(interval)
