"""The supervisor of background jobs: restarts with backoff, finished jobs, graceful stop."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from common.supervisor import Crash, Job, Supervisor


class FakeTime:
    """A clock that only moves when told to, and a sleep that records how long it was asked
    to wait, moves the clock that far, and returns at once."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def crashing_job(runs: list[int], crashes: int, done: asyncio.Event) -> Job:
    """A job that crashes on its first `crashes` runs, then runs until cancelled."""

    async def job() -> None:
        runs.append(len(runs) + 1)
        if len(runs) <= crashes:
            raise RuntimeError(f"crash number {len(runs)}")
        done.set()
        await asyncio.Event().wait()

    return job


async def test_a_crashing_job_is_restarted_with_growing_backoff(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeTime()
    runs: list[int] = []
    done = asyncio.Event()
    seen_while_backing_off: list[Crash] = []

    async def watching_sleep(seconds: float) -> None:
        seen_while_backing_off.append(supervisor.backing_off()["watcher"])
        await fake.sleep(seconds)

    async with Supervisor(clock=fake.clock, sleep=watching_sleep) as supervisor:
        supervisor.start("watcher", crashing_job(runs, 5, done))
        await asyncio.wait_for(done.wait(), 5)
        assert supervisor.backing_off() == {}
        assert supervisor.jobs == ["watcher"]

    assert fake.sleeps == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert runs == [1, 2, 3, 4, 5, 6]
    assert [crash.crashes for crash in seen_while_backing_off] == [1, 2, 3, 4, 5]
    assert seen_while_backing_off[2] == Crash("RuntimeError: crash number 3", 3, 2.0)
    crashes = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(crashes) == 5
    assert all(r.exc_info is not None for r in crashes)
    assert "watcher" in crashes[0].getMessage()
    assert "Traceback" in caplog.text and "crash number 5" in caplog.text


async def test_backoff_stops_growing_at_its_maximum() -> None:
    fake = FakeTime()
    done = asyncio.Event()
    async with Supervisor(max_backoff_s=2, clock=fake.clock, sleep=fake.sleep) as supervisor:
        supervisor.start("poller", crashing_job([], 6, done))
        await asyncio.wait_for(done.wait(), 5)
    assert fake.sleeps == [0.5, 1.0, 2.0, 2.0, 2.0, 2.0]


async def test_backoff_starts_again_after_a_long_run() -> None:
    fake = FakeTime()
    runs: list[int] = []
    done = asyncio.Event()

    async def job() -> None:
        runs.append(len(runs) + 1)
        if len(runs) == 3:
            fake.now += 61  # this run lasted longer than stable_after_s
        if len(runs) <= 5:
            raise RuntimeError("crash")
        done.set()

    async with Supervisor(clock=fake.clock, sleep=fake.sleep) as supervisor:
        supervisor.start("tailer", job)
        await asyncio.wait_for(done.wait(), 5)
    assert fake.sleeps == [0.5, 1.0, 0.5, 1.0, 2.0]


async def test_a_finished_job_is_not_restarted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="spacereg.supervisor")
    fake = FakeTime()
    runs: list[int] = []

    async def job() -> None:
        runs.append(1)

    async with Supervisor(clock=fake.clock, sleep=fake.sleep) as supervisor:
        supervisor.start("migration", job)
        for _ in range(10):
            await asyncio.sleep(0)
        assert runs == [1]
        assert supervisor.jobs == []
        assert "job migration finished" in caplog.text
        supervisor.start("migration", job)  # the name is free again
        for _ in range(10):
            await asyncio.sleep(0)
    assert runs == [1, 1]
    assert fake.sleeps == []


async def test_crashes_are_restarted_in_real_time() -> None:
    runs: list[int] = []
    done = asyncio.Event()
    async with Supervisor(min_backoff_s=0.01) as supervisor:
        supervisor.start("real", crashing_job(runs, 2, done))
        await asyncio.wait_for(done.wait(), 5)
    assert runs == [1, 2, 3]


async def test_stop_cancels_running_and_backing_off_jobs() -> None:
    cancelled: list[str] = []
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append("forever")
            raise

    async def crash() -> None:
        raise RuntimeError("crash")

    supervisor = Supervisor(min_backoff_s=3600)
    supervisor.start("forever", forever)
    supervisor.start("crash", crash)
    await started.wait()
    await asyncio.sleep(0)
    assert list(supervisor.backing_off()) == ["crash"]

    began = time.monotonic()
    await supervisor.stop()
    assert time.monotonic() - began < 1
    assert cancelled == ["forever"]
    assert supervisor.jobs == []
    assert supervisor.backing_off() == {}
    with pytest.raises(RuntimeError):
        supervisor.start("late", forever)


async def test_stop_returns_when_a_job_ignores_cancellation(
    caplog: pytest.LogCaptureFixture,
) -> None:
    started, released, ended = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def stubborn() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await released.wait()  # cleaning up for longer than shutdown allows
        finally:
            ended.set()

    supervisor = Supervisor(stop_timeout_s=0.2)
    supervisor.start("stubborn", stubborn)
    await started.wait()
    began = time.monotonic()
    await supervisor.stop()
    assert 0.2 <= time.monotonic() - began < 1
    assert not ended.is_set()
    assert "job stubborn did not stop within 0.2 s" in caplog.text

    released.set()
    await asyncio.wait_for(ended.wait(), 1)


async def test_a_job_name_runs_once_at_a_time() -> None:
    async def idle() -> None:
        await asyncio.Event().wait()

    async with Supervisor() as supervisor:
        supervisor.start("delivery", idle)
        with pytest.raises(ValueError):
            supervisor.start("delivery", idle)
