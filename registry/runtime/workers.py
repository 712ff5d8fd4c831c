"""`spacereg serve --workers N`: N processes of the registry answering on one port.

The parent listens on the port and the workers accept from its socket, each while it holds no
more connections than the least busy (`balanced_accept`). The parent only starts the workers,
starts another when one dies (after a pause that grows while they die young), and stops them all
on SIGTERM or SIGINT. Each worker builds the whole app from the same settings (the parent hands
them on in the environment, which outranks the file, with the path of the file), and the workers
act as replicas of one node: the database is shared, `WorkerBus` tells every worker of a change
(unless NATS does), the jobs that must run once per node run in the one worker that holds the
node's lock (`NodeJobs`), and `/metrics` sums the instruments of every worker
(`Metrics.scrape`).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable, MutableSequence
from dataclasses import dataclass
from multiprocessing.context import SpawnContext, SpawnProcess
from pathlib import Path

from prometheus_client.multiprocess import mark_process_dead

from common.backoff import backoff_s, crashes_in_a_row
from federation.keys import SigningKeys
from registry.auth.idp.keys import IdpKeys
from registry.auth.idp.users import load_users
from registry.runtime.balanced_accept import BalancedServer, ConnectionCounts
from registry.runtime.metrics import MULTIPROCESS_DIR_VARIABLE
from registry.runtime.settings import Settings, load_settings

logger = logging.getLogger("spacereg")

# The configuration file of the `serve` that started the workers (empty: none).
CONFIG_FILE_VARIABLE = "SPACEREG_WORKER_CONFIG_FILE"
WATCH_S = 0.5  # how often the parent looks for a worker that died
# A worker that dies young is started again after a pause doubling from the first to the
# longest; one that ran this long before it died starts the count again.
RESTART_FIRST_S = 0.5
RESTART_MAX_S = 30.0
STABLE_AFTER_S = 60.0
STOP_TIMEOUT_S = 30.0  # a worker's graceful shutdown, before it is killed
LISTEN_BACKLOG = 2048  # uvicorn's default


def serve(settings: Settings, config_file: Path | None) -> None:
    """Make what the workers would otherwise race to make, then run them until stopped."""
    prepare_keys(settings, logger.warning)
    with (
        tempfile.TemporaryDirectory(prefix="spacereg-metrics-") as metrics,
        _listening(settings.host, settings.port) as listener,
    ):
        os.environ.update(
            {
                CONFIG_FILE_VARIABLE: str(config_file.resolve()) if config_file else "",
                "SPACEREG_DATA_DIR": str(settings.data_dir),
                "SPACEREG_HOST": settings.host,
                "SPACEREG_PORT": str(settings.port),
                "SPACEREG_WORKERS": str(settings.workers),
                MULTIPROCESS_DIR_VARIABLE: metrics,
            }
        )
        _supervise(settings.workers, listener)


def prepare_keys(settings: Settings, say: Callable[[str], None]) -> SigningKeys:
    """The federation keys, and the embedded IdP's keys and demo users (their passwords told
    through `say`, once), made where missing: by one process before the replicas or workers
    sharing the data directory start, so that they all load the same ones."""
    signing_keys = SigningKeys.load_or_create(settings.data_dir / "federation-keys")
    if settings.embedded_idp:
        directory = settings.data_dir / "idp"
        IdpKeys.load_or_create(directory)
        load_users(directory, settings.idp_users, say)
    return signing_keys


def _listening(host: str, port: int) -> socket.socket:
    """The node's listening socket, which every worker accepts from (failing now if another
    program listens on the port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(LISTEN_BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


@dataclass
class _Worker:
    process: SpawnProcess
    started_at: float
    crashes: int = 0  # ended in a row, each before running `STABLE_AFTER_S`
    restart_at: float | None = None  # set while it waits to be started again


def _supervise(count: int, listener: socket.socket) -> None:
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    logger.info("starting %d worker processes", count)
    spawn = multiprocessing.get_context("spawn")
    # Each worker's open connections and when it said so (`balanced_accept`).
    slots = (spawn.Array("q", count, lock=False), spawn.Array("d", count, lock=False))
    workers = [_Worker(_start(spawn, listener, slots, n), time.monotonic()) for n in range(count)]
    try:
        while not stopping.wait(WATCH_S):
            now = time.monotonic()
            for n, worker in enumerate(workers):
                if worker.restart_at is None and not worker.process.is_alive():
                    _ended(worker, now)
                if worker.restart_at is not None and now >= worker.restart_at:
                    worker.process = _start(spawn, listener, slots, n)
                    worker.started_at, worker.restart_at = now, None
    finally:
        processes = [worker.process for worker in workers]
        for process in processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn shuts down gracefully
        for process in processes:
            process.join(STOP_TIMEOUT_S)
            if process.is_alive():
                process.kill()


def _ended(worker: _Worker, now: float) -> None:
    """A worker died: start another after a pause that grows while they keep dying young (an
    app that cannot start, a database that is down), so that the node does not spin."""
    # Its streams and tailer position no longer count among the node's (`Metrics`).
    mark_process_dead(worker.process.pid)  # type: ignore[no-untyped-call]
    worker.crashes = crashes_in_a_row(worker.crashes, now - worker.started_at, STABLE_AFTER_S)
    pause_s = backoff_s(worker.crashes, RESTART_FIRST_S, RESTART_MAX_S)
    worker.restart_at = now + pause_s
    logger.warning(
        "worker process %s ended (exit status %s, %d in a row); starting another in %.1f s",
        worker.process.pid,
        worker.process.exitcode,
        worker.crashes,
        pause_s,
    )


Slots = tuple[MutableSequence[int], MutableSequence[float]]


def _start(spawn: SpawnContext, listener: socket.socket, slots: Slots, index: int) -> SpawnProcess:
    worker = spawn.Process(target=_worker, args=(listener, slots, index), daemon=False)
    worker.start()
    return worker


def _worker(listener: socket.socket, slots: Slots, index: int) -> None:
    """One worker process: the app, served from the node's listening socket."""
    import uvicorn

    from registry.runtime.cli import configure_logging, frozen_app, uvicorn_options

    config_file = os.environ.get(CONFIG_FILE_VARIABLE)
    settings = load_settings(Path(config_file) if config_file else None)
    configure_logging(settings.log_format)
    app = frozen_app(settings)
    options = uvicorn_options(
        settings.host, settings.port, settings.tls_certfile, settings.tls_keyfile
    )
    counted = ConnectionCounts(*slots, index)
    BalancedServer(uvicorn.Config(app, **options), listener, counted).run()
