"""Sessions live in the database: a replica on the same database knows a session made at
another, and a session ends by itself after its time."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx2

from registry.web.sessions import LOGIN_TTL, SESSION_TTL
from tests.clock import FakeClock
from tests.conftest import running_registry
from tests.web.conftest import Browser


async def test_a_session_made_at_one_replica_is_known_at_another(
    tmp_path: Path, idp_key_dir: Path
) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    with running_registry(tmp_path / "a", idp_key_dir, database_url=database) as a:
        base = {"database_url": database, "base_url": a.url}
        with running_registry(tmp_path / "b", idp_key_dir, **base) as b:
            async with httpx2.AsyncClient(base_url=a.url) as client:
                await Browser(client).log_in("marie")
                cookie = client.cookies["spacereg_session"]
            async with httpx2.AsyncClient(
                base_url=b.url, cookies={"spacereg_session": cookie}
            ) as other:
                page = await other.get("/")
    assert page.status_code == 200
    assert "Marie Curie" in page.text


async def test_a_session_ends_after_its_time(tmp_path: Path, idp_key_dir: Path) -> None:
    clock = FakeClock()
    with running_registry(tmp_path / "data", idp_key_dir, clock) as registry:
        async with httpx2.AsyncClient(base_url=registry.url) as client:
            browser = Browser(client)
            await browser.log_in("einstein")
            clock.advance(SESSION_TTL - timedelta(seconds=1))
            assert (await client.get("/")).status_code == 200
            clock.advance(timedelta(seconds=1))
            assert (await client.get("/")).headers["location"] == "/login?next=%2F"

            started = await client.get("/login")
            state = httpx2.URL(started.headers["location"]).params["state"]
            clock.advance(LOGIN_TTL)  # a login left at the IdP's form too long
            late = await client.get("/login/callback", params={"code": "c", "state": state})
            assert late.status_code == 401 and "expired" in late.text
