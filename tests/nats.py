"""A throwaway NATS server with JetStream for tests: `nats-server -js` on a free loopback port,
its store and log under `<a directory of the test's>/nats`; it can be stopped and started again
on the same port and store, as an operator's restart would.

Where nats-server is missing, tests using it are skipped, except in CI (CI=true), which fails.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.processes import stop_process, wait_until
from tests.servers import free_port

START_TIMEOUT_S = 15
STOP_TIMEOUT_S = 10


def find_nats_server() -> str:
    """Debian installs nats-server in /usr/sbin, which is not on every user's PATH."""
    on_path = shutil.which("nats-server")
    if on_path:
        return on_path
    for candidate in ("/usr/sbin/nats-server", "/usr/bin/nats-server"):
        if os.access(candidate, os.X_OK):
            return candidate
    message = "nats-server is not installed (Debian package `nats-server`)"
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


class NatsServer:
    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.program = find_nats_server()
        self.directory = directory / "nats"
        self.store_dir = self.directory / "jetstream"
        self.log_file = self.directory / "nats-server.log"
        self.port = port or free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [self.program, "-js", "-a", "127.0.0.1", "-p", str(self.port)]
        command += ["-sd", str(self.store_dir), "-l", str(self.log_file)]
        self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
        if not wait_until(self._accepts_clients, self._process, START_TIMEOUT_S, 0.02):
            self.stop()
            raise RuntimeError(f"nats-server did not start on port {self.port}:\n{self.log()}")

    def stop(self) -> None:
        """SIGTERM (the server flushes its store), then SIGKILL if it lingers."""
        process, self._process = self._process, None
        if process is not None:
            stop_process(process, seconds=STOP_TIMEOUT_S)

    def log(self) -> str:
        return self.log_file.read_text() if self.log_file.exists() else ""

    def _accepts_clients(self) -> bool:
        """The server greets every client with an INFO line once it is ready."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                return sock.recv(5) == b"INFO "
        except OSError:
            return False


@contextmanager
def nats_server(directory: Path) -> Iterator[NatsServer]:
    """A running nats-server with JetStream, its files under `directory`/nats."""
    server = NatsServer(directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()
