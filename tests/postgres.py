"""A throwaway PostgreSQL cluster for tests: `initdb` + `pg_ctl start` into a temp dir, on a free
loopback port, trust auth on 127.0.0.1 only; databases made on demand; all removed at the end.

As root (CI), initdb refuses to run, so the server programs run as the `postgres` system user
that Debian's postgresql package creates. Clients (createdb, asyncpg) connect over TCP as the
cluster's superuser `postgres` from any local account.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from tests.servers import free_port

SUPERUSER = "postgres"
START_TIMEOUT_S = 30
SERVER_OPTIONS = (
    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
)


class PostgresUnavailable(Exception):
    """PostgreSQL binaries (or the account to run them as) are missing on this machine."""


def find_bin_dir() -> Path:
    """The directory holding initdb, pg_ctl and postgres (the newest Debian version wins)."""
    on_path = shutil.which("initdb")
    candidates = [Path(os.path.realpath(on_path)).parent] if on_path else []
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += sorted(
        (Path(p) for p in versions), key=lambda p: _version(p.parent.name), reverse=True
    )
    for directory in candidates:
        if all((directory / name).exists() for name in ("initdb", "pg_ctl", "postgres")):
            return directory
    raise PostgresUnavailable(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) are not on PATH nor under "
        "/usr/lib/postgresql/*/bin; install Debian's `postgresql` package"
    )


def start_for_tests() -> PostgresCluster:
    """A started cluster; where PostgreSQL is missing, skip, except in CI (CI=true), which must
    have it and fails loudly instead."""
    try:
        cluster = PostgresCluster()
    except PostgresUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required in CI but unavailable: {exc}", pytrace=False)
        pytest.skip(f"PostgreSQL not available: {exc}")
    cluster.start()
    return cluster


def _version(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


class PostgresCluster:
    def __init__(self, bin_dir: Path | None = None) -> None:
        self.bin_dir = bin_dir or find_bin_dir()
        self.as_user: str | None = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError as exc:
                raise PostgresUnavailable(
                    "running as root, but there is no `postgres` system user to run initdb as"
                ) from exc
            self.as_user = "postgres"
        self.root = Path(tempfile.mkdtemp(prefix="spacereg-pg-"))
        self.data_dir = self.root / "data"
        self.log_file = self.root / "server.log"
        self.port = 0
        self._started = False

    def start(self) -> None:
        try:
            if self.as_user is not None:
                shutil.chown(self.root, self.as_user, self.as_user)
            self._server(
                "initdb", "-D", str(self.data_dir), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8",
                "--locale=C", "--no-sync", "--no-instructions",
            )  # fmt: skip
            (self.data_dir / "pg_hba.conf").write_text(
                "local all all trust\nhost all all 127.0.0.1/32 trust\n"
            )
            self._start_on_free_port()
        except BaseException:
            self.stop()
            raise

    def _start_on_free_port(self, attempts: int = 3) -> None:
        for attempt in range(attempts):
            self.port = free_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -p {self.port} "
                f"-c unix_socket_directories={self.root} {SERVER_OPTIONS}"
            )
            try:
                self._server(
                    "pg_ctl", "start", "-D", str(self.data_dir), "-l", str(self.log_file),
                    "-w", "-t", str(START_TIMEOUT_S), "-o", options,
                )  # fmt: skip
            except RuntimeError:
                if attempt == attempts - 1:
                    raise
                continue
            self._started = True
            return

    def create_database(self, name: str | None = None) -> str:
        """Make an empty database; returns its SQLAlchemy URL (asyncpg driver)."""
        name = name or f"test_{uuid.uuid4().hex[:12]}"
        self._run(
            [str(self.bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
             "-U", SUPERUSER, "-T", "template1", name],
        )  # fmt: skip
        return self.url(name)

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        try:
            if self._started:
                self._server("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "immediate", "-w")
                self._started = False
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def _server(self, program: str, *args: str) -> None:
        command = [str(self.bin_dir / program), *args]
        if self.as_user is not None:
            command = ["runuser", "-u", self.as_user, "--", *command]
        self._run(command)

    def _run(self, command: list[str]) -> None:
        done = subprocess.run(
            command, cwd=self.root, capture_output=True, text=True, timeout=60, check=False
        )
        if done.returncode != 0:
            log = self.log_file.read_text() if self.log_file.exists() else ""
            raise RuntimeError(
                f"{' '.join(command)} failed ({done.returncode}):\n"
                f"{done.stdout}{done.stderr}{log[-2000:]}"
            )
