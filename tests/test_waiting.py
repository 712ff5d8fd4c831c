"""`set_within` waits for an event up to a deadline, and never swallows a cancellation: a loop
that waits with it stops when cancelled, even as it is woken (which `asyncio.wait_for`
swallows on Python 3.11)."""

from __future__ import annotations

import asyncio

import pytest

from common.waiting import set_within


async def test_true_when_set_and_false_at_the_deadline() -> None:
    event = asyncio.Event()
    assert await set_within(event, 0.01) is False
    asyncio.get_running_loop().call_later(0.01, event.set)
    assert await set_within(event, None) is True


async def test_a_loop_woken_as_it_is_cancelled_stops() -> None:
    woken = asyncio.Event()
    rounds = 0

    async def loop() -> None:
        nonlocal rounds
        while True:
            await set_within(woken, 1.0)
            woken.clear()
            rounds += 1

    running = asyncio.create_task(loop())
    await asyncio.sleep(0.01)  # the loop waits
    woken.set()
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(running, 5)
    assert rounds == 0
