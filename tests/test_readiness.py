"""`/healthz` and `/readyz` with what the registry depends on really taken away: a PostgreSQL
cluster stopped, a NATS server stopped, a storage provider on its own node stopped."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Registry, running_registry
from tests.nats import nats_server
from tests.postgres import start_for_tests
from tests.test_remote_provider import ProviderProcess, provider, registry_with_remote  # noqa: F401 (fixtures)
from tests.waiting import eventually


async def readiness(registry: Registry) -> tuple[int, str]:
    """The status of `/readyz` and, when not ready, the reason it gives (`""` when ready)."""
    async with registry.client() as anonymous:
        response = await anonymous.get("/readyz")
    if response.status_code == 200:
        assert response.json() == {"status": "ready"}
        return 200, ""
    assert response.json()["error"]["code"] == "notReady"
    return response.status_code, response.json()["error"]["message"]


async def alive(registry: Registry) -> bool:
    async with registry.client() as anonymous:
        return (await anonymous.get("/healthz")).json() == {"status": "ok"}


async def test_a_fresh_registry_is_alive_and_ready(registry: Registry) -> None:
    assert await alive(registry)
    assert await readiness(registry) == (200, "")


@pytest.mark.postgres
async def test_stopped_database_makes_the_registry_unready_but_alive(
    tmp_path: Path, idp_key_dir: Path
) -> None:
    cluster = start_for_tests()  # its own cluster: the session's one serves other tests
    try:
        url = cluster.create_database()
        with running_registry(tmp_path / "data", idp_key_dir, database_url=url) as registry:
            assert await readiness(registry) == (200, "")
            cluster.stop()
            status, reason = await readiness(registry)
            assert status == 503
            assert reason.startswith("not ready: database unreachable")
            assert await alive(registry)
    finally:
        cluster.stop()


async def test_stopped_bus_makes_the_registry_unready_until_it_returns(
    tmp_path: Path, idp_key_dir: Path
) -> None:
    with (
        nats_server(tmp_path) as nats,
        running_registry(tmp_path / "data", idp_key_dir, nats_url=nats.url) as registry,
    ):
        assert await readiness(registry) == (200, "")
        nats.stop()

        async def unready() -> tuple[int, str] | None:
            found = await readiness(registry)
            return found if found[0] == 503 else None

        assert await eventually(unready) == (
            503,
            "not ready: bus unreachable: not connected to NATS",
        )
        assert await alive(registry)
        nats.start()

        async def ready() -> bool:
            return await readiness(registry) == (200, "")

        assert await eventually(ready, seconds=20)


async def test_stopped_provider_makes_the_registry_unready_until_it_returns(
    registry_with_remote: Registry,  # noqa: F811
    provider: ProviderProcess,  # noqa: F811
) -> None:
    assert await readiness(registry_with_remote) == (200, "")
    provider.stop()
    status, reason = await readiness(registry_with_remote)
    assert status == 503
    assert reason.startswith("not ready: provider disk1 unreachable")
    assert await alive(registry_with_remote)
    provider.start()
    assert await readiness(registry_with_remote) == (200, "")
