"""Nothing is lost when the registry is killed, and nothing is left over: SIGKILL in the middle
of a burst of changes, or of an upload."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx2
from sqlalchemy import select

from registry.core.models import ChangeRecord, table
from registry.runtime.db import create_engine
from tests.processes import RegistryProcess
from tests.receivers import SECRET, running_receiver
from tests.servers import free_port
from tests.waiting import eventually

BURST = 160
KILL_AFTER = 60
WRITERS = 8


async def test_webhook_gets_every_change_exactly_once_by_id_across_a_sigkill(
    tmp_path: Path, idp_key_dir: Path
) -> None:
    registry = RegistryProcess(
        tmp_path / "data",
        free_port(),
        idp_key_dir,
        SPACEREG_ALLOW_PRIVATE_NETWORKS="127.0.0.0/8",
        SPACEREG_ALLOW_HTTP="1",
    )
    registry.start()
    headers = {"Authorization": f"Bearer {registry.token('admin')}"}
    with running_receiver() as receiver:
        receiver.delay = 0.01  # a slow receiver, so deliveries queue up behind the changes
        try:
            async with httpx2.AsyncClient(base_url=registry.url, headers=headers) as client:
                project = (await client.post("/graph/v1.0/drives", json={"name": "Burst"})).json()
                made = await client.post(
                    "/api/v1/subscriptions",
                    json={"callbackUrl": receiver.url, "secret": SECRET, "drives": [project["id"]]},
                )
                assert made.status_code == 201, made.text
                cursor = int((await client.get("/api/v1/changes")).json()["cursor"])

                acknowledged: list[str] = []
                names = iter(range(BURST))

                async def writer() -> None:
                    for n in names:
                        name = f"Burst {n}"
                        try:
                            response = await client.patch(
                                f"/graph/v1.0/drives/{project['id']}", json={"name": name}
                            )
                        except httpx2.TransportError:
                            return  # the registry is gone
                        if response.status_code == 200:
                            acknowledged.append(name)
                        if len(acknowledged) == KILL_AFTER:
                            registry.kill()

                await asyncio.gather(*(writer() for _ in range(WRITERS)))
            assert registry.process is not None and registry.process.returncode == -9
            delivered_before_kill = len(receiver.events)

            registry.start()
            logged = await changes_after(registry, project["id"], cursor)
            await eventually(lambda: set(receiver.events) == logged, seconds=60)
        finally:
            registry.stop()

    assert delivered_before_kill < len(logged), "the kill should land while deliveries queue"
    assert set(receiver.events) == logged
    assert len(receiver.order) == len(set(receiver.order))
    delivered_names = {event["data"]["name"] for event in receiver.events.values()}
    assert set(acknowledged) <= delivered_names, "an acknowledged change was lost"
    assert receiver.bad_signatures == 0


async def changes_after(registry: RegistryProcess, space_id: str, cursor: int) -> set[str]:
    engine = create_engine(f"sqlite+aiosqlite:///{registry.data_dir / 'spacereg.db'}")
    changes = table(ChangeRecord)
    try:
        async with engine.connect() as conn:
            found = await conn.execute(
                select(changes.c.seq).where(changes.c.space_id == space_id, changes.c.seq > cursor)
            )
            return {str(seq) for seq in found.scalars()}
    finally:
        await engine.dispose()


async def test_an_upload_cut_short_by_a_sigkill_leaves_nothing_after_a_restart(
    tmp_path: Path, idp_key_dir: Path
) -> None:
    registry = RegistryProcess(tmp_path / "data", free_port(), idp_key_dir)
    registry.start()
    token = registry.token("admin")
    spaces = registry.data_dir / "spaces"
    try:
        async with httpx2.AsyncClient(
            base_url=registry.url, headers={"Authorization": f"Bearer {token}"}
        ) as client:
            project = (await client.post("/graph/v1.0/drives", json={"name": "Cut"})).json()
        path = f"/dav/spaces/{project['id']}/big.bin"
        _, writer = await asyncio.open_connection("127.0.0.1", registry.port)
        writer.write(
            f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            "Content-Length: 1000000\r\n\r\n".encode()
            + b"x" * 10_000
        )
        await writer.drain()
        assert await eventually(lambda: any((spaces / ".uploads").glob("*")))
        registry.kill()
        writer.close()
        assert any((spaces / ".uploads").iterdir()), "the kill should leave the upload behind"

        registry.start()
        assert await eventually(lambda: not any((spaces / ".uploads").iterdir()))
        assert os.listdir(spaces / project["id"]) == []
    finally:
        registry.stop()
