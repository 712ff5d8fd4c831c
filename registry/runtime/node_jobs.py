"""Jobs that one process of a node runs, when `serve --workers N` runs several: sending the
outbox, retention, share subscription renewals, reconciling and watching the providers.

Whichever worker first takes the node's lock file starts them under its supervisor; when that
worker dies the operating system frees the lock and another worker takes them over within a
poll. Replicas on other nodes run their own (each job is safe beside another's copy: claims
with leases, idempotent sweeps), so the lock only keeps N workers from doing the work N times.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from common.supervisor import Job, Sleep, Supervisor

logger = logging.getLogger("spacereg.jobs")

LOCK_POLL_S = 1.0


class NodeJobs:
    def __init__(
        self,
        lock_file: Path,
        supervisor: Supervisor,
        jobs: Mapping[str, Job],
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._lock_file = lock_file
        self._supervisor = supervisor
        self._jobs = jobs
        self._sleep = sleep

    async def run(self) -> None:
        """Wait for the lock, start the jobs, and hold the lock until cancelled."""
        descriptor = os.open(self._lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            while not _locked(descriptor):
                await self._sleep(LOCK_POLL_S)
            logger.info("this worker (pid %d) runs the node's jobs", os.getpid())
            for name, job in self._jobs.items():
                self._supervisor.start(name, job)
            await asyncio.Event().wait()
        finally:
            os.close(descriptor)  # frees the lock


def _locked(descriptor: int) -> bool:
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
