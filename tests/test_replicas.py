"""Two `spacereg serve` processes on one PostgreSQL, with NATS JetStream between them, act as
one registry: a change through one reaches SSE clients of the other, and each outbox entry is
sent once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from tests.nats import nats_server
from tests.processes import RegistryProcess
from tests.receivers import SECRET, running_receiver
from tests.servers import free_port
from tests.sse import events
from tests.waiting import eventually

RENAMES = 60


@pytest.fixture
def replicas(
    tmp_path: Path, idp_key_dir: Path, postgres_url: str
) -> Iterator[tuple[RegistryProcess, RegistryProcess]]:
    with nats_server(tmp_path) as nats:
        port_a = free_port()
        shared = {
            "SPACEREG_DATABASE_URL": postgres_url,
            "SPACEREG_NATS_URL": nats.url,
            # Behind one load balancer both answer for one URL, so one issuer for the IdP.
            "SPACEREG_BASE_URL": f"http://127.0.0.1:{port_a}",
            # Polls so rare that only the bus can make a change arrive quickly.
            "SPACEREG_CHANGE_POLL_SECONDS": "30",
            "SPACEREG_ALLOW_PRIVATE_NETWORKS": "127.0.0.0/8",
            "SPACEREG_ALLOW_HTTP": "1",
        }
        a = RegistryProcess(tmp_path / "a", port_a, idp_key_dir, **shared)
        b = RegistryProcess(tmp_path / "b", free_port(), idp_key_dir, **shared)
        a.start()  # migrates the database before b starts
        b.start()
        try:
            yield a, b
        finally:
            a.stop()
            b.stop()


async def test_sse_client_on_one_replica_sees_a_change_made_through_the_other(replicas):
    a, b = replicas
    token = a.token("admin")
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx2.AsyncClient(base_url=a.url, headers=headers) as through_a:
        project = (await through_a.post("/graph/v1.0/drives", json={"name": "Replicated"})).json()
        async with events(b.url, token) as stream:
            renamed = await through_a.patch(
                f"/graph/v1.0/drives/{project['id']}", json={"name": "Seen on b"}
            )
            assert renamed.status_code == 200
            event = await stream.next(seconds=3)  # far less than the 30 s poll
    assert (event.type, event.data["data"]) == ("renamed", {"name": "Seen on b"})


async def test_each_outbox_entry_is_sent_once_by_one_replica(replicas):
    a, b = replicas
    headers = {"Authorization": f"Bearer {a.token('admin')}"}
    with running_receiver() as receiver:
        async with (
            # 60 renames of one space at once queue on its row: patience, not speed, is tested.
            httpx2.AsyncClient(base_url=a.url, headers=headers, timeout=60) as through_a,
            httpx2.AsyncClient(base_url=b.url, headers=headers, timeout=60) as through_b,
        ):
            project = (await through_a.post("/graph/v1.0/drives", json={"name": "Once"})).json()
            made = await through_b.post(
                "/api/v1/subscriptions",
                json={"callbackUrl": receiver.url, "secret": SECRET, "drives": [project["id"]]},
            )
            assert made.status_code == 201, made.text

            async def rename(n: int) -> None:
                client = through_a if n % 2 else through_b
                response = await client.patch(
                    f"/graph/v1.0/drives/{project['id']}", json={"name": f"Once {n}"}
                )
                assert response.status_code == 200

            await asyncio.gather(*(rename(n) for n in range(RENAMES)))
        assert await eventually(lambda: len(receiver.events) == RENAMES, seconds=20)
        await asyncio.sleep(0.5)  # time for a second sending, were there one
    assert receiver.duplicates == 0
    assert {e["data"]["name"] for e in receiver.events.values()} == {
        f"Once {n}" for n in range(RENAMES)
    }


async def test_a_lock_taken_at_one_replica_holds_at_the_other(replicas):
    a, b = replicas
    headers = {"Authorization": f"Bearer {a.token('einstein')}"}
    async with (
        httpx2.AsyncClient(base_url=a.url, headers=headers) as through_a,
        httpx2.AsyncClient(base_url=b.url, headers=headers) as through_b,
    ):
        space = (await through_a.get("/graph/v1.0/me/drive")).json()["id"]
        url = f"/dav/spaces/{space}/contract.txt"
        assert (await through_a.put(url, content=b"v1")).status_code == 201
        body = (
            b'<d:lockinfo xmlns:d="DAV:"><d:lockscope><d:exclusive/></d:lockscope>'
            b"<d:locktype><d:write/></d:locktype></d:lockinfo>"
        )
        locked = await through_a.request("LOCK", url, content=body)
        assert locked.status_code == 200, locked.text
        refused = await through_b.put(url, content=b"v2")
        assert (refused.status_code, refused.json()["error"]["code"]) == (423, "locked")
        # Here each replica has a storage of its own, so only what the gateway decides
        # before any storage is asked is compared: the lock and its token.
        token = locked.headers["lock-token"]
        unlocked = await through_b.request("UNLOCK", url, headers={"Lock-Token": token})
        assert unlocked.status_code == 204
        assert (await through_a.put(url, content=b"v2")).status_code == 204


async def test_an_app_password_revoked_at_one_replica_is_refused_at_the_other(replicas):
    a, b = replicas
    password = a.app_password("einstein", "laptop")  # the command, beside both servers
    token = a.token("einstein")
    async with (
        httpx2.AsyncClient(base_url=b.url, auth=("einstein", password)) as via_b,
        httpx2.AsyncClient(
            base_url=a.url, headers={"Authorization": f"Bearer {token}"}
        ) as through_a,
    ):
        assert (await via_b.get("/ocs/v1.php/cloud/user?format=json")).status_code == 200
        made = (await through_a.get("/api/v1/me/app-passwords")).json()["value"]
        assert [m["label"] for m in made] == ["laptop"]
        revoked = await through_a.delete(f"/api/v1/me/app-passwords/{made[0]['id']}")
        assert revoked.status_code == 204
        assert (await via_b.get("/ocs/v1.php/cloud/user?format=json")).status_code == 401
