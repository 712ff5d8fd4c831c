"""A storage provider on its own node (`spacereg provider serve`): the registry keeps spaces
there, subscribes to its changes, and marks its spaces unavailable while it is gone."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from xml.etree import ElementTree

import httpx2
import pytest

from tests.conftest import Registry, running_registry
from tests.processes import ServiceProcess, clean_env
from tests.servers import free_port
from tests.sse import events
from tests.test_drives_api import create_project
from tests.waiting import eventually

SECRET = "a-provider-secret-shared-with-the-registry-0123456789"


class ProviderProcess(ServiceProcess):
    """`spacereg provider serve` holding spaces under `data_dir`/spaces."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.root = data_dir / "spaces"
        env = clean_env(
            SPACEREG_PROVIDER_NAME="disk1",
            SPACEREG_PROVIDER_PORT=str(port),
            SPACEREG_PROVIDER_SECRET=SECRET,
            SPACEREG_PROVIDER_DATA_DIR=str(data_dir),
            SPACEREG_PROVIDER_OPTION_ROOT=str(self.root),
        )
        super().__init__(["provider", "serve"], port, data_dir / "serve.log", env)


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
    with running_registry(tmp_path / "registry", idp_key_dir, providers=providers) as running:
        yield running


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
    provider: ProviderProcess, admin
):
    project = await create_project(admin, "Sometimes away")
    personal = (await admin.get("/graph/v1.0/me/drive")).json()

    async def availability(space_id: str) -> str:
        return (await admin.get(f"/graph/v1.0/drives/{space_id}")).json()["availability"]

    async def unavailable() -> bool:
        return await availability(project["id"]) == "unavailable"

    async def available_again() -> bool:
        return await availability(project["id"]) == "available"

    provider.stop()
    assert await eventually(unavailable)
    assert await availability(personal["id"]) == "available"  # held by the local provider
    listed = (await admin.get("/graph/v1.0/me/drives")).json()["value"]
    assert {d["id"]: d["availability"] for d in listed}[project["id"]] == "unavailable"
    away = await admin.get(f"/dav/spaces/{project['id']}/x.txt")
    assert away.status_code == 503

    provider.start()
    assert await eventually(available_again)


async def test_a_remote_providers_files_keep_ids_recursive_etags_and_the_callers_permissions(
    admin, registry_with_remote: Registry
):
    """The provider service runs the local driver; the registry's proxy passes through its
    ownCloud properties and the gateway's permission and quota headers."""
    project = await create_project(admin, "Ids elsewhere")
    root = f"/dav/spaces/{project['id']}"
    body = (
        b'<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop><d:getetag/>'
        b"<oc:id/><oc:permissions/><oc:size/><d:quota-available-bytes/></d:prop></d:propfind>"
    )

    async def props(path: str) -> dict[str, str | None]:
        found = await admin.request("PROPFIND", path, headers={"Depth": "0"}, content=body)
        assert found.status_code == 207, found.text
        tree = ElementTree.fromstring(found.content)
        prop = tree.find(".//{DAV:}propstat/{DAV:}prop")
        assert prop is not None
        return {child.tag.rpartition("}")[2]: child.text for child in prop}

    await admin.request("MKCOL", f"{root}/a")
    await admin.request("MKCOL", f"{root}/a/b")
    put = await admin.put(f"{root}/a/b/f.txt", content=b"12345")
    assert put.headers["oc-fileid"].startswith(f"{project['id']}!")
    before = await props(f"{root}/a")
    await admin.request("MOVE", f"{root}/a/b/f.txt", headers={"Destination": f"{root}/a/b/g.txt"})
    await admin.put(f"{root}/a/b/g.txt", content=b"1234567")
    after = await props(f"{root}/a")
    assert after["getetag"] != before["getetag"] and after["size"] == "7"
    assert after["permissions"] == "DNVCK"
    assert (await props(f"{root}/a/b/g.txt"))["id"] == put.headers["oc-fileid"]
    assert int((await props(f"{root}/"))["quota-available-bytes"] or 0) > 0
