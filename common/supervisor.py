"""Runs the background jobs of a process (the registry's change tailer, delivery queue and
provider watchers; a provider service's driver workers): a job that crashes is logged and
restarted after a growing pause; `stop()` cancels them all."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from common import backoff
from common.waiting import cancel_all

__all__ = ["Crash", "Job", "Supervisor"]

logger = logging.getLogger("spacereg.supervisor")

Job = Callable[[], Awaitable[None]]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Crash:
    """Why a job is waiting to be restarted."""

    error: str  # "ValueError: the message"
    crashes: int  # in a row, without a run lasting `stable_after_s` between them
    backoff_s: float  # the pause before the next run


class Supervisor:
    def __init__(
        self,
        *,
        min_backoff_s: float = 0.5,
        max_backoff_s: float = 60.0,
        stable_after_s: float = 60.0,
        stop_timeout_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.min_backoff_s = min_backoff_s
        self.max_backoff_s = max_backoff_s
        self.stable_after_s = stable_after_s
        self.stop_timeout_s = stop_timeout_s
        self._clock = clock
        self._sleep = sleep
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._backing_off: dict[str, Crash] = {}
        self._stopping = False

    @property
    def jobs(self) -> list[str]:
        """The names of the jobs that have not finished (running or waiting to restart)."""
        return list(self._tasks)

    def backing_off(self) -> dict[str, Crash]:
        """The jobs waiting to be restarted after a crash, for a health check."""
        return dict(self._backing_off)

    def start(self, name: str, job: Job) -> None:
        if self._stopping:
            raise RuntimeError(f"cannot start job {name!r}: the supervisor is stopping")
        if name in self._tasks:
            raise ValueError(f"a job named {name!r} is already running")
        self._tasks[name] = asyncio.create_task(self._supervise(name, job), name=name)

    async def stop(self) -> None:
        """Cancel every job and wait for them, at most `stop_timeout_s`."""
        self._stopping = True
        tasks = dict(self._tasks)
        running = await cancel_all(tasks.values(), self.stop_timeout_s)
        for name, task in tasks.items():
            if task in running:
                logger.error(
                    "job %s did not stop within %.1f s of being cancelled; leaving it",
                    name,
                    self.stop_timeout_s,
                )

    async def __aenter__(self) -> Supervisor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _supervise(self, name: str, job: Job) -> None:
        crashes = 0
        try:
            while True:
                started = self._clock()
                try:
                    await job()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if self._stopping:
                        logger.warning("job %s failed while stopping", name, exc_info=exc)
                        return
                    ran_s = self._clock() - started
                    crashes = backoff.crashes_in_a_row(crashes, ran_s, self.stable_after_s)
                    backoff_s = backoff.backoff_s(crashes, self.min_backoff_s, self.max_backoff_s)
                    logger.error(
                        "job %s crashed after %.1f s (%d in a row); restarting in %.1f s",
                        name,
                        ran_s,
                        crashes,
                        backoff_s,
                        exc_info=exc,
                    )
                    error = f"{type(exc).__name__}: {exc}"
                    self._backing_off[name] = Crash(error, crashes, backoff_s)
                    try:
                        await self._sleep(backoff_s)
                    finally:
                        del self._backing_off[name]
                else:
                    logger.info("job %s finished", name)
                    return
        finally:
            if self._tasks.get(name) is asyncio.current_task():
                del self._tasks[name]
