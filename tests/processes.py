"""`spacereg serve` and `spacereg provider serve` as real processes of their own, to kill,
restart and run side by side."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx2

SPACEREG = [sys.executable, "-m", "registry"]
START_TIMEOUT_S = 30


def clean_env(**env: str) -> dict[str, str]:
    """This process's environment without its SPACEREG_ settings, plus `env`: a child process
    sees only the settings a test gives it."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith("SPACEREG_")}
    return {**kept, **env}


def stop_process(
    process: subprocess.Popen[bytes] | subprocess.Popen[str],
    how: signal.Signals = signal.SIGTERM,
    seconds: float = 15,
) -> None:
    """Ask a running `process` to stop with `how`; SIGKILL if it has not within `seconds`."""
    if process.poll() is not None:
        return
    process.send_signal(how)
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def answers_healthz(url: str) -> bool:
    try:
        return httpx2.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx2.TransportError:
        return False


def wait_until(
    ready: Callable[[], bool],
    process: subprocess.Popen[bytes] | subprocess.Popen[str],
    seconds: float = START_TIMEOUT_S,
    interval: float = 0.1,
) -> bool:
    """Whether `ready()` came true before `process` exited or `seconds` passed."""
    deadline = time.monotonic() + seconds
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def wait_until_serving(
    url: str,
    process: subprocess.Popen[bytes] | subprocess.Popen[str],
    seconds: float = START_TIMEOUT_S,
) -> bool:
    """Whether the server `process` runs answered 200 at `url`/healthz before it exited or
    `seconds` passed (the registry and the provider service both serve /healthz)."""
    return wait_until(lambda: answers_healthz(url), process, seconds)


class ServiceProcess:
    """`python -m registry <args>` serving on `port`; its output goes to `log`."""

    def __init__(self, args: list[str], port: int, log: Path, env: dict[str, str]) -> None:
        self.args = args
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.launch()
        assert self.process is not None
        if not wait_until_serving(self.url, self.process):
            self.stop()
            raise RuntimeError(f"spacereg {' '.join(self.args)} did not start:\n{self.output()}")

    def launch(self) -> None:
        """Start it, without waiting for it to serve (`start` waits over plain HTTP)."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [*SPACEREG, *self.args], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    def output(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no shutdown work at all, as when a machine loses power."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)


class RegistryProcess(ServiceProcess):
    """`spacereg serve` on `data_dir`. With `idp_key_dir`, its IdP signs with the tests' shared
    key; without, it makes its own, as on a newcomer's first start."""

    def __init__(
        self, data_dir: Path, port: int, idp_key_dir: Path | None = None, **env: str
    ) -> None:
        super().__init__(
            ["--data-dir", str(data_dir), "serve"],
            port,
            data_dir / "serve.log",
            clean_env(SPACEREG_PORT=str(port), **env),
        )
        self.data_dir = data_dir
        if idp_key_dir is not None:
            install_idp_key(idp_key_dir, data_dir)

    def token(self, username: str) -> str:
        return self._last_line("token", username)

    def app_password(self, username: str, label: str = "") -> str:
        """A new app password of `username`, made by `spacereg app-password` while it serves."""
        return self._last_line("app-password", username, "--label", label)

    def _last_line(self, *command: str) -> str:
        done = subprocess.run(
            [*SPACEREG, "--data-dir", str(self.data_dir), *command],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout.strip().splitlines()[-1]


def install_idp_key(idp_key_dir: Path, data_dir: Path) -> None:
    """Give the registry on `data_dir` the IdP signing key made once in `idp_key_dir`
    (generating an RSA key is the slow part of a registry's first start)."""
    (data_dir / "idp").mkdir(parents=True, exist_ok=True)
    shutil.copy(idp_key_dir / "signing-key.json", data_dir / "idp")
