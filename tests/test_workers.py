"""`spacereg serve --workers 2` on SQLite without NATS: two processes answer on one port as
one registry. Connections are spread evenly over them; a change through either reaches an SSE
stream held by the other through the worker bus (the database poll is made too rare to do it),
and the node's once-only jobs run in one worker at a time, taken over by another when it dies;
a worker that keeps dying young is started again after ever longer pauses. Metrics count every
live worker: requests, streams, and the change-log lag from the slowest worker's position."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import ssl
from collections.abc import Awaitable, Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx2
import pytest
import trustme

from tests.processes import RegistryProcess
from tests.servers import free_port
from tests.sse import events
from tests.test_metrics import samples, value
from tests.waiting import eventually

RENAMES = 12
LISTINGS = 10
CONNECTIONS = 32
JOBS_TAKEN = re.compile(r"this worker \(pid (\d+)\) runs the node's jobs")
STARTED = re.compile(r"Started server process \[(\d+)\]")
RESTART_PAUSES = re.compile(
    r"ended \(exit status -9, (\d+) in a row\); starting another in (\S+) s"
)


@pytest.fixture
def workers(tmp_path: Path, idp_key_dir: Path) -> Iterator[RegistryProcess]:
    registry = RegistryProcess(
        tmp_path / "node",
        free_port(),
        idp_key_dir,
        SPACEREG_WORKERS="2",
        SPACEREG_CHANGE_POLL_SECONDS="30",
    )
    registry.start()
    try:
        assert wait_for(lambda: started(registry) == 2)
        yield registry
    finally:
        registry.stop()


def wait_for(probe: object, seconds: float = 60) -> bool:
    return asyncio.run(eventually(probe, seconds))  # type: ignore[arg-type]


def started(registry: RegistryProcess) -> int:
    """How many worker processes have started serving."""
    return registry.output().count("Application startup complete")


def worker_pids(registry: RegistryProcess) -> list[int]:
    """The worker processes in the order they started."""
    return [int(pid) for pid in STARTED.findall(registry.output())]


def job_holders(registry: RegistryProcess) -> list[int]:
    return [int(pid) for pid in JOBS_TAKEN.findall(registry.output())]


async def test_changes_through_either_worker_reach_a_stream_on_the_other(workers):
    token = workers.token("admin")
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx2.AsyncClient(base_url=workers.url, headers=headers) as client:
        project = (await client.post("/graph/v1.0/drives", json={"name": "Shared"})).json()
    async with events(workers.url, token) as stream:
        for n in range(RENAMES):
            # A connection of its own each time, which the worker without the stream accepts
            # (it holds fewer connections): each change is made through the other worker.
            async with httpx2.AsyncClient(base_url=workers.url, headers=headers) as client:
                renamed = await client.patch(
                    f"/graph/v1.0/drives/{project['id']}", json={"name": f"Shared {n}"}
                )
                assert renamed.status_code == 200, renamed.text
                listed = await client.get("/graph/v1.0/me/drives")
                names = {d["id"]: d["name"] for d in listed.json()["value"]}
                assert names[project["id"]] == f"Shared {n}"
            event = await stream.next(seconds=5)  # far less than the 30 s poll
            assert (event.type, event.data["data"]) == ("renamed", {"name": f"Shared {n}"})


async def test_the_nodes_jobs_run_in_one_worker_and_move_when_it_dies(workers):
    [holder] = job_holders(workers)
    os.kill(holder, signal.SIGKILL)
    assert await eventually(lambda: len(job_holders(workers)) == 2, seconds=60)
    successor = job_holders(workers)[1]
    assert successor != holder
    # The parent starts a worker in place of the dead one.
    assert await eventually(lambda: started(workers) == 3, seconds=60)
    async with httpx2.AsyncClient(base_url=workers.url) as client:
        assert (await client.get("/healthz")).status_code == 200


async def test_a_worker_that_keeps_dying_young_is_started_again_ever_more_slowly(workers):
    for killed in range(1, 4):
        os.kill(worker_pids(workers)[-1], signal.SIGKILL)  # the newest
        assert await eventually(lambda n=killed: started(workers) == 2 + n, seconds=60)
        assert len(RESTART_PAUSES.findall(workers.output())) == killed
    pauses = [(int(row), float(pause)) for row, pause in RESTART_PAUSES.findall(workers.output())]
    assert pauses == [(1, 0.5), (2, 1.0), (3, 2.0)]  # doubling, as they died in a row
    async with httpx2.AsyncClient(base_url=workers.url) as client:
        assert (await client.get("/healthz")).status_code == 200


async def test_metrics_count_the_requests_of_every_worker(workers):
    headers = {"Authorization": f"Bearer {workers.token('admin')}"}
    for _ in range(LISTINGS):
        async with httpx2.AsyncClient(base_url=workers.url, headers=headers) as client:
            assert (await client.get("/graph/v1.0/me/drives")).status_code == 200
    async with httpx2.AsyncClient(base_url=workers.url, headers=headers) as client:
        scraped = await client.get("/metrics")
    assert scraped.status_code == 200
    counted = value(
        samples(scraped.text),
        "spacereg_http_request_duration_seconds_count",
        method="GET",
        route="/graph/v1.0/me/drives",
        status="200",
    )
    assert counted == LISTINGS


async def test_connections_are_spread_evenly_over_the_workers(workers):
    """By hash (`SO_REUSEPORT`), 32 connections over two workers split 16/16 one time in
    seven."""
    opened = []
    try:
        for _ in range(CONNECTIONS):
            reader, writer = await asyncio.open_connection("127.0.0.1", workers.port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: registry\r\n\r\n")
            assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
            opened.append(writer)
        held = connections_held(workers.port)
        assert sum(held.values()) == CONNECTIONS, held
        assert len(held) == 2, held
        assert max(held.values()) - min(held.values()) <= 1, held
    finally:
        for writer in opened:
            writer.close()


async def test_metrics_count_the_streams_of_every_live_worker(workers):
    admin = workers.token("admin")
    async with events(workers.url, workers.token("einstein")):
        [(holder, count)] = connections_held(workers.port).items()
        assert count == 1
        # Each scrape is accepted by the other worker (it holds fewer connections).
        assert (
            await eventually(lambda: scraped(workers, admin, "spacereg_sse_connections"), 10) == 1
        )
        os.kill(holder, signal.SIGKILL)
        assert await eventually(
            lambda: _is(scraped(workers, admin, "spacereg_sse_connections"), 0), 30
        )


async def test_the_change_log_lag_is_the_slowest_live_workers(workers):
    admin = workers.token("admin")

    def lag() -> Awaitable[float]:
        return scraped(workers, admin, "spacereg_change_log_lag")

    # Not the worker running the node's jobs, which might be stopped inside a write.
    [stopped] = [pid for pid in worker_pids(workers) if pid not in job_holders(workers)]
    os.kill(stopped, signal.SIGSTOP)  # its tailer stands still; the other worker accepts alone
    try:
        await asyncio.sleep(0.5)  # its connection count goes stale (`balanced_accept`)
        headers = {"Authorization": f"Bearer {admin}"}
        async with httpx2.AsyncClient(base_url=workers.url, headers=headers) as client:
            made = await client.post("/graph/v1.0/drives", json={"name": "Lagging"})
            assert made.status_code == 201, made.text
        assert await lag() >= 1
    finally:
        os.kill(stopped, signal.SIGCONT)
    assert await eventually(lambda: _is(lag(), 0), 30)

    # A worker starting again has said no position yet: it adds no lag meanwhile.
    os.kill(stopped, signal.SIGKILL)
    lags = []

    async def lag_until_started() -> bool:
        lags.append(await lag())
        return started(workers) == 3

    assert await eventually(lag_until_started, 60)
    assert set(lags) == {0}


async def scraped(workers: RegistryProcess, admin: str, name: str) -> float:
    """The value of the unlabelled metric `name` in a scrape, with `admin`'s token."""
    headers = {"Authorization": f"Bearer {admin}"}
    async with httpx2.AsyncClient(base_url=workers.url, headers=headers) as client:
        scrape = await client.get("/metrics")
    assert scrape.status_code == 200
    return value(samples(scrape.text), name)


async def _is(measured: Awaitable[float], expected: float) -> bool:
    return await measured == expected


async def test_workers_serve_tls_while_a_handshake_stalls(tmp_path: Path, idp_key_dir: Path):
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1")
    ca.cert_pem.write_to_path(tmp_path / "ca.pem")
    issued.private_key_and_cert_chain_pem.write_to_path(tmp_path / "server.pem")
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    registry = RegistryProcess(
        tmp_path / "node",
        port,
        idp_key_dir,
        SPACEREG_WORKERS="2",
        SPACEREG_BASE_URL=url,
        SPACEREG_TLS_CERTFILE=str(tmp_path / "server.pem"),
        SPACEREG_TLS_KEYFILE=str(tmp_path / "server.pem"),
    )
    context = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    registry.launch()
    try:
        assert await eventually(lambda: started(registry) == 2, seconds=60)
        # A client that connects and never says hello holds a worker's handshake open...
        _stalled, staller = await asyncio.open_connection("127.0.0.1", port)
        try:
            async with AsyncExitStack() as held:  # ...while others connect, are answered, stay
                for _ in range(CONNECTIONS):
                    client = httpx2.AsyncClient(base_url=url, verify=context)
                    await held.enter_async_context(client)
                    assert (await client.get("/healthz")).status_code == 200
        finally:
            staller.close()
    finally:
        registry.stop()


def connections_held(port: int) -> dict[int, int]:
    """Established connections to `port` (IPv4) by the process holding them (from /proc)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port, state, inode = int(fields[1].split(":")[1], 16), fields[3], fields[9]
        if local_port == port and state == "01":  # ESTABLISHED
            inodes.add(f"socket:[{inode}]")
    held: dict[int, int] = {}
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            found = sum(os.readlink(fd) in inodes for fd in fd_dir.iterdir())
        except OSError:  # gone, or not ours to read
            continue
        if found:
            held[int(fd_dir.parent.name)] = found
    return held
