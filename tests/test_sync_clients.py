"""The real sync clients from Debian against a real registry on loopback, with an app password:
ownCloud's `owncloudcmd` 2.11 and Nextcloud's `nextcloudcmd` 3.7 sync a nested tree both ways,
and rclone's ownCloud mode syncs and checks hashes. Every request the clients send is recorded,
so that "nothing transferred" and "uploaded with If-Match" are what the server saw."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.conftest import Registry, build_app, migrate, registry_settings
from tests.servers import free_port, serve

SYNC_SECONDS = 180
BIG_BYTES = 25 * 1024 * 1024
TRANSFERS = frozenset({"PUT", "GET", "DELETE", "MKCOL", "MOVE", "COPY"})
# What the clients write beside the files; Debian's ownCloud package lacks its own list.
EXCLUDES = "*.part\n*~\n.sync_*.db*\n._sync_*.db*\n.owncloudsync.log*\n.sync-exclude.lst\n"


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Recorder:
    """The registry's app, remembering every request's method, path and headers."""

    app: ASGIApp
    seen: list[Request] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            self.seen.append(Request(scope["method"], scope["path"], headers))
        await self.app(scope, receive, send)

    def transfers(self) -> list[Request]:
        """The WebDAV requests that move or change files."""
        return [
            request
            for request in self.seen
            if request.method in TRANSFERS and request.path.startswith(("/remote.php/", "/dav/"))
        ]


@dataclass
class Served:
    registry: Registry
    recorder: Recorder
    password: str

    def files(self) -> httpx2.Client:
        """WebDAV of einstein's personal space, as the server side of the tests uses it."""
        return httpx2.Client(
            base_url=f"{self.registry.url}/remote.php/webdav",
            auth=("einstein", self.password),
            timeout=30,
        )


@pytest.fixture
def served(tmp_path: Path, idp_key_dir: Path) -> Iterator[Served]:
    settings = registry_settings(tmp_path / "data", free_port())
    migrate(settings)
    app = build_app(settings, idp_key_dir)
    recorder = Recorder(app)
    with serve(recorder, settings.port) as url:
        registry = Registry(url, app, settings)
        token = registry.token("einstein")
        made = httpx2.post(
            f"{url}/api/v1/me/app-passwords",
            json={"label": "desktop"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert made.status_code == 201
        yield Served(registry, recorder, made.json()["password"])


def sync(command: str, served: Served, local: Path, home: Path) -> list[Request]:
    """One run of the client; the requests it sent that move data."""
    excludes = home / "sync-exclude.lst"
    home.mkdir(exist_ok=True)
    excludes.write_text(EXCLUDES)
    served.recorder.seen.clear()
    done = subprocess.run(
        [
            command,
            "--non-interactive",
            "--exclude",
            str(excludes),
            "-u",
            "einstein",
            "-p",
            served.password,
            str(local),
            served.registry.url,
        ],
        capture_output=True,
        text=True,
        timeout=SYNC_SECONDS,
        env={**os.environ, "HOME": str(home)},
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return served.recorder.transfers()


def tree(local: Path) -> None:
    (local / "a" / "b" / "c").mkdir(parents=True)
    (local / "top.txt").write_text("top\n")
    (local / "a" / "b" / "c" / "deep.txt").write_text("three folders deep\n")
    (local / "a" / "b" / "middle.txt").write_text("in between\n")
    (local / "a" / "random.bin").write_bytes(os.urandom(2 * 1024 * 1024))


CLIENTS = [
    pytest.param(
        command,
        marks=pytest.mark.skipif(shutil.which(command) is None, reason=f"needs {command}"),
    )
    for command in ("owncloudcmd", "nextcloudcmd")
]


@pytest.mark.parametrize("command", CLIENTS)
def test_a_desktop_client_syncs_a_nested_tree_both_ways(command, served, tmp_path):
    local, home = tmp_path / "local", tmp_path / "home"
    local.mkdir()
    tree(local)
    first = sync(command, served, local, home)
    assert {r.method for r in first} >= {"PUT", "MKCOL"}
    with served.files() as files:
        for path in ("top.txt", "a/b/c/deep.txt", "a/b/middle.txt", "a/random.bin"):
            assert files.get(path).content == (local / path).read_bytes(), path

        assert sync(command, served, local, home) == []  # nothing changed, nothing moves

        assert files.put("a/b/c/deep.txt", content=b"changed on the server\n").is_success
        pulled = sync(command, served, local, home)
        assert (local / "a" / "b" / "c" / "deep.txt").read_text() == "changed on the server\n"
        assert [(r.method, r.path) for r in pulled if r.method != "GET"] == []

        (local / "top.txt").write_text("edited here\n")
        pushed = sync(command, served, local, home)
        puts = [r for r in pushed if r.method == "PUT"]
        assert len(puts) == 1 and puts[0].path.endswith("/top.txt")
        assert puts[0].headers.get("if-match", "").startswith('"')
        assert files.get("top.txt").text == "edited here\n"

        (local / "a" / "random.bin").unlink()
        removed = sync(command, served, local, home)
        assert [r.method for r in removed] == ["DELETE"]
        assert files.get("a/random.bin").status_code == 404


@pytest.mark.parametrize("command", CLIENTS)
def test_a_25_mb_file_is_uploaded_in_chunks_and_round_trips(command, served, tmp_path):
    local, home = tmp_path / "local", tmp_path / "home"
    local.mkdir()
    content = os.urandom(BIG_BYTES)
    (local / "big.bin").write_bytes(content)
    sent = sync(command, served, local, home)
    chunked = [r for r in sent if r.method == "PUT" and "/remote.php/dav/uploads/" in r.path]
    assert len(chunked) > 1, "not sent in chunks of the chunking NG, which is announced"
    assert any(r.method == "MOVE" and r.path.endswith("/.file") for r in sent)
    with served.files() as files:
        assert (
            hashlib.sha256(files.get("big.bin").content).digest()
            == hashlib.sha256(content).digest()
        )
    again = tmp_path / "again"
    again.mkdir()
    sync(command, served, again, tmp_path / "home2")
    assert (again / "big.bin").read_bytes() == content


def rclone(*args: str, served: Served, config: Path) -> subprocess.CompletedProcess[str]:
    obscured = subprocess.run(
        ["rclone", "obscure", served.password], capture_output=True, text=True, check=True
    ).stdout.strip()
    env = {
        **os.environ,
        "RCLONE_CONFIG": str(config),
        "RCLONE_CONFIG_SPACE_TYPE": "webdav",
        "RCLONE_CONFIG_SPACE_URL": f"{served.registry.url}/remote.php/webdav/",
        "RCLONE_CONFIG_SPACE_VENDOR": "owncloud",
        "RCLONE_CONFIG_SPACE_USER": "einstein",
        "RCLONE_CONFIG_SPACE_PASS": obscured,
    }
    return subprocess.run(
        ["rclone", *args], capture_output=True, text=True, timeout=SYNC_SECONDS, env=env
    )


@pytest.mark.skipif(shutil.which("rclone") is None, reason="needs rclone")
def test_rclone_in_owncloud_mode_syncs_only_changes_and_checks_hashes(served, tmp_path):
    local, config = tmp_path / "local", tmp_path / "rclone.conf"
    local.mkdir()
    tree(local)
    for i in range(20):
        (local / "a" / f"n{i}.txt").write_text(f"note {i}\n")
    config.write_text("")
    first = rclone("sync", str(local), "space:backup", served=served, config=config)
    assert first.returncode == 0, first.stderr
    served.recorder.seen.clear()
    again = rclone("sync", "-v", str(local), "space:backup", served=served, config=config)
    assert again.returncode == 0, again.stderr
    assert "Copied" not in again.stderr
    assert served.recorder.transfers() == []
    checked = rclone("check", str(local), "space:backup", served=served, config=config)
    assert checked.returncode == 0, checked.stderr
    assert "0 differences found" in checked.stderr
    assert "could not be checked" not in checked.stderr and "hash unsupported" not in checked.stderr
    about = rclone("about", "space:", served=served, config=config)
    assert about.returncode == 0 and "Free:" in about.stdout and "Used:" in about.stdout
