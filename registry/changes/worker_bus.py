"""The bus between the worker processes of one node (`spacereg serve --workers N`) when no
NATS server is configured.

Each worker binds a Unix datagram socket in a directory of the node's own; publishing sends the
message to every socket there, this worker's too (as the other buses do). A socket whose worker
is gone refuses and is removed. A worker whose queue is full misses the message, which the
database poll makes up for (the bus is a hint).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import secrets
import socket
import stat
import tempfile
from collections import defaultdict
from pathlib import Path

from registry.changes.bus import BusError, Handler, deliver

__all__ = ["WorkerBus", "node_directory"]

logger = logging.getLogger("spacereg.bus")

MESSAGE_BYTES_MAX = 64 * 1024


def node_directory(data_dir: Path) -> Path:
    """Where the workers sharing `data_dir` meet: a short path (a socket's is at most 107
    bytes) that each of them derives alike."""
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"spacereg-{os.getuid()}-{digest}"


class WorkerBus:
    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._handlers: defaultdict[str, list[Handler]] = defaultdict(list)
        self._socket: socket.socket | None = None
        self._path: Path | None = None
        self._deliveries: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._directory.mkdir(mode=0o700, exist_ok=True)
        found = self._directory.stat()
        if found.st_uid != os.getuid() or stat.S_IMODE(found.st_mode) & 0o077:
            raise BusError(f"{self._directory} must be this user's alone (mode 0700)")
        self._path = self._directory / f"{os.getpid()}-{secrets.token_hex(4)}.sock"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(self._path))
        sock.setblocking(False)
        self._socket = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._readable)

    async def publish(self, subject: str, payload: bytes) -> None:
        if self._socket is None:
            raise BusError("the bus has not started")
        message = subject.encode() + b"\0" + payload
        if len(message) > MESSAGE_BYTES_MAX:
            raise BusError(f"a message of {len(message)} bytes is too long for the worker bus")
        for peer in self._directory.glob("*.sock"):
            try:
                self._socket.sendto(message, str(peer))
            except (ConnectionRefusedError, FileNotFoundError):
                peer.unlink(missing_ok=True)  # its worker is gone
            except BlockingIOError:
                logger.warning("worker %s is behind; it will poll for the change", peer.stem)

    def subscribe(self, subject: str, handler: Handler) -> None:
        self._handlers[subject].append(handler)

    async def close(self) -> None:
        if self._socket is not None:
            asyncio.get_running_loop().remove_reader(self._socket.fileno())
            self._socket.close()
            self._socket = None
        if self._path is not None:
            self._path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # the other workers' sockets are still there
                self._directory.rmdir()
        for task in list(self._deliveries):
            task.cancel()
        self._handlers.clear()

    def _readable(self) -> None:
        assert self._socket is not None
        while True:
            try:
                message = self._socket.recv(MESSAGE_BYTES_MAX)
            except BlockingIOError:
                return
            subject, _, payload = message.partition(b"\0")
            name = subject.decode(errors="replace")
            task = asyncio.create_task(deliver(name, list(self._handlers.get(name, ())), payload))
            self._deliveries.add(task)
            task.add_done_callback(self._deliveries.discard)
