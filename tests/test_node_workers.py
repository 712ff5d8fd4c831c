"""The pieces that make worker processes of one node act as one registry, each on its own:
the worker bus (Unix datagram sockets) and the lock that gives the node's jobs to one worker."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from common.supervisor import Supervisor
from registry.changes.bus import BusError
from registry.changes.worker_bus import WorkerBus, node_directory
from registry.runtime.node_jobs import NodeJobs
from registry.runtime.settings import ConfigError, load_settings
from tests.waiting import eventually


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    # A socket's path must be short: tmp_path may not be.
    found = node_directory(tmp_path)
    yield found
    if found.exists():
        for path in found.glob("*"):
            path.unlink()
        found.rmdir()


async def test_a_message_reaches_every_worker_and_a_gone_one_is_forgotten(directory: Path):
    first, second = WorkerBus(directory), WorkerBus(directory)
    heard: list[tuple[str, bytes]] = []

    async def hear_first(payload: bytes) -> None:
        heard.append(("first", payload))

    async def hear_second(payload: bytes) -> None:
        heard.append(("second", payload))

    first.subscribe("changes", hear_first)
    second.subscribe("changes", hear_second)
    await first.start()
    await second.start()
    gone = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    gone.bind(str(directory / "1-gone.sock"))
    gone.close()  # a worker killed before it could remove its socket
    try:
        await first.publish("changes", b"hint")
        assert await eventually(lambda: len(heard) == 2)
        assert sorted(heard) == [("first", b"hint"), ("second", b"hint")]
        assert not (directory / "1-gone.sock").exists()
        await first.publish("other", b"nobody listens")
        with pytest.raises(BusError):
            await first.publish("changes", b"x" * 70_000)
    finally:
        await first.close()
        await second.close()
    assert removed(directory)  # the last worker to go removes it


def removed(directory: Path) -> bool:
    return not directory.exists()


@pytest.fixture
def open_directory(directory: Path) -> Path:
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)  # whatever the umask
    return directory


async def test_a_directory_others_may_enter_is_refused(open_directory: Path):
    with pytest.raises(BusError):
        await WorkerBus(open_directory).start()


async def test_the_nodes_jobs_run_in_one_holder_of_the_lock_at_a_time(tmp_path: Path):
    started: list[str] = []

    def job(name: str):
        async def run() -> None:
            started.append(name)
            await asyncio.Event().wait()

        return run

    async def soon(_seconds: float) -> None:
        await asyncio.sleep(0.01)

    lock = tmp_path / "node-jobs.lock"
    async with Supervisor() as first, Supervisor() as second:
        first.start("node-jobs", NodeJobs(lock, first, {"a": job("first")}, soon).run)
        assert await eventually(lambda: started == ["first"])
        second.start("node-jobs", NodeJobs(lock, second, {"a": job("second")}, soon).run)
        await asyncio.sleep(0.2)
        assert started == ["first"]
        await first.stop()  # the holder goes: its lock with it
        assert await eventually(lambda: started == ["first", "second"])


@pytest.mark.parametrize("workers", [0, -1, "2"])
def test_a_number_of_workers_that_is_no_positive_whole_number_is_refused(workers: object):
    with pytest.raises(ConfigError, match="workers"):
        load_settings(env={}, overrides={"workers": workers})
