"""A storage provider on its own node (`spacereg provider serve`): the registry keeps spaces
there, subscribes to its changes, and marks its spaces unavailable while it is gone."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx2
import pytest

from tests.conftest import Registry, registry_settings, start_registry_context
from tests.servers import free_port
from tests.sse import events
from tests.test_drives_api import create_project

SECRET = "a-provider-secret-shared-with-the-registry-0123456789"


class ProviderProcess:
    def __init__(self, data_dir: Path, port: int) -> None:
        self.root = data_dir / "spaces"
        self.url = f"http://127.0.0.1:{port}"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SPACEREG_")},
            "SPACEREG_PROVIDER_NAME": "disk1",
            "SPACEREG_PROVIDER_PORT": str(port),
            "SPACEREG_PROVIDER_SECRET": SECRET,
            "SPACEREG_PROVIDER_DATA_DIR": str(data_dir),
            "SPACEREG_PROVIDER_OPTION_ROOT": str(self.root),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "registry", "provider", "serve"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx2.get(f"{self.url}/provider/v1/metadata", timeout=1)
                return
            except httpx2.TransportError:
                time.sleep(0.1)
        raise RuntimeError("the provider service did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=15)


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[ProviderProcess]:
    service = ProviderProcess(tmp_path / "provider", free_port())
    service.start()
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
def registry_with_remote(
    tmp_path: Path, idp_key_dir: Path, provider: ProviderProcess
) -> Iterator[Registry]:
    providers = [
        {"name": "local", "driver": "local", "root": str(tmp_path / "local")},
        {
            "name": "disk1",
            "driver": "remote",
            "url": provider.url,
            "secret": SECRET,
            "drive_types": ["project"],
            "probe_seconds": 0.5,
            "retry_max_seconds": 1,
        },
    ]
    settings = registry_settings(tmp_path / "registry", free_port(), providers=providers)
    app, server = start_registry_context(settings, idp_key_dir)
    with server as url:
        yield Registry(url, app, settings)


@pytest.fixture
async def admin(registry_with_remote: Registry) -> AsyncIterator[httpx2.AsyncClient]:
    async with registry_with_remote.client("admin") as client:
        yield client


async def test_provider_on_its_own_node_is_subscribed_to_and_delivers(
    registry_with_remote: Registry, provider: ProviderProcess, admin
):
    project = await create_project(admin, "Held elsewhere")
    space_dir = provider.root / project["id"]
    assert space_dir.is_dir(), "the project space lives on the provider's node"
    assert project["availability"] == "available"

    async with events(registry_with_remote.url, registry_with_remote.token("admin")) as stream:
        (space_dir / "from-the-provider-node.txt").write_text("written on disk1")
        content = await stream.until("content", seconds=5)
        put = await admin.put(f"/dav/spaces/{project['id']}/via-registry.txt", content=b"hello")
        assert put.status_code == 201, put.text
        through_dav = await stream.until("content", seconds=5)

    assert "/from-the-provider-node.txt" in content[-1].data["data"]["paths"]
    assert through_dav[-1].data["data"]["used"] == len("written on disk1") + len("hello")
    listed = (await admin.get(f"/graph/v1.0/drives/{project['id']}")).json()
    assert listed["root"]["eTag"] == through_dav[-1].data["data"]["etag"]
    got = await admin.get(f"/dav/spaces/{project['id']}/via-registry.txt")
    assert (got.status_code, got.content) == (200, b"hello")


async def test_unreachable_provider_marks_its_spaces_unavailable_until_it_returns(
    registry_with_remote: Registry, provider: ProviderProcess, admin
):
    project = await create_project(admin, "Sometimes away")
    personal = (await admin.get("/graph/v1.0/me/drive")).json()

    async def availability(space_id: str) -> str:
        return (await admin.get(f"/graph/v1.0/drives/{space_id}")).json()["availability"]

    provider.stop()
    states: list[str] = []
    for _ in range(100):
        states.append(await availability(project["id"]))
        if states[-1] == "unavailable":
            break
        await asyncio.sleep(0.05)
    assert states[-1] == "unavailable"
    assert await availability(personal["id"]) == "available"  # held by the local provider
    listed = (await admin.get("/graph/v1.0/me/drives")).json()["value"]
    assert {d["id"]: d["availability"] for d in listed}[project["id"]] == "unavailable"
    away = await admin.get(f"/dav/spaces/{project['id']}/x.txt")
    assert away.status_code == 503

    provider.start()
    back: list[str] = []

    async def returned() -> bool:
        back.append(await availability(project["id"]))
        return back[-1] == "available"

    for _ in range(100):
        if await returned():
            break
        await asyncio.sleep(0.05)
    assert back[-1] == "available"
