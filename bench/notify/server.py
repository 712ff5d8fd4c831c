"""The registry under test: `spacereg serve` as its own process (tests.processes), in a scratch
directory, what /proc says about it, and an httpx2 client for its API."""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx2

from bench.common.load import HOST
from tests.processes import RegistryProcess
from tests.servers import free_port


def raise_nofile() -> tuple[int, int]:
    """Soft open-files limit up to the hard one; the registry inherits it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else 1_048_576
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


class Registry(RegistryProcess):
    """`spacereg serve` on loopback, SQLite and the embedded IdP, that may deliver webhooks to
    plain-HTTP loopback receivers."""

    def __init__(self, data_dir: Path, port: int) -> None:
        super().__init__(
            data_dir,
            port,
            SPACEREG_HOST=HOST,
            SPACEREG_ALLOW_PRIVATE_NETWORKS="127.0.0.0/8",
            SPACEREG_ALLOW_HTTP="1",
        )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def _proc(self, name: str) -> str:
        return Path(f"/proc/{self.pid}/{name}").read_text()

    def status_kb(self, field_name: str) -> int:
        """A /proc/<pid>/status figure in KB, as `VmRSS`."""
        for line in self._proc("status").splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
        return 0

    def pss_kb(self) -> int:
        try:
            text = self._proc("smaps_rollup")
        except OSError:
            return 0
        for line in text.splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
        return 0

    def cpu_s(self) -> float:
        """User and system CPU seconds the registry has used."""
        fields = self._proc("stat").rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def nofile(self) -> str:
        for line in self._proc("limits").splitlines():
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return f"{soft}/{hard}"
        return "?"

    def api(self, token: str) -> httpx2.AsyncClient:
        """A keep-alive client for the registry's API as the holder of `token`."""
        return httpx2.AsyncClient(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx2.Timeout(30, read=None),
            limits=httpx2.Limits(max_connections=None, max_keepalive_connections=None),
        )


@asynccontextmanager
async def running_registry() -> AsyncIterator[Registry]:
    """A started registry on a fresh data directory; its log's tail goes to stderr if the
    block fails, and the directory goes when it ends."""
    directory = Path(tempfile.mkdtemp(prefix="spacereg-bench-notify-"))
    registry = Registry(directory / "data", free_port())
    try:
        await asyncio.to_thread(registry.start)
        yield registry
    except BaseException:
        print(f"\nregistry log (tail):\n{registry.output()[-4000:]}", file=sys.stderr)
        raise
    finally:
        registry.stop()
        shutil.rmtree(directory, ignore_errors=True)


async def create_space(api: httpx2.AsyncClient, name: str) -> str:
    """A project space (the token's user manages it); its id."""
    response = await api.post("/graph/v1.0/drives", json={"name": name})
    if response.status_code != 201:
        raise SystemExit(f"creating a space answered {response.status_code}: {response.text}")
    return str(response.json()["id"])
