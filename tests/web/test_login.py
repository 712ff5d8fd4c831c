"""Logging in to the web UI at the embedded IdP (authorization code flow with PKCE) into a
server-side session; the session's cookie, its CSRF token, and logout."""

from __future__ import annotations

import hashlib

import httpx2
from sqlalchemy import select

from registry.core.models import WebSession, table
from tests.conftest import Registry, running_registry
from tests.web.conftest import Browser

SESSIONS = table(WebSession)


async def session_rows(registry: Registry) -> list[dict[str, object]]:
    async with registry.app.state.services.engine.connect() as conn:
        return [dict(row._mapping) for row in await conn.execute(select(SESSIONS))]


async def test_login_through_the_idp_form_lands_on_the_spaces_page(
    browser: Browser, registry: Registry
) -> None:
    started = await browser.client.get("/login")
    assert started.headers["location"].startswith(f"{registry.url}/idp/authorize?")
    assert "code_challenge_method=S256" in started.headers["location"]

    landed = await browser.log_in("einstein")

    assert landed.status_code == 303 and landed.headers["location"] == "/"
    cookie = landed.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    page = await browser.client.get("/")
    assert page.status_code == 200
    assert "<h1>Spaces</h1>" in page.text and "Albert Einstein" in page.text
    token = browser.client.cookies["spacereg_session"]
    rows = await session_rows(registry)
    [row] = [row for row in rows if row["username"] is not None]
    assert len(rows) == 2  # and the anonymous one of the first /login: logging in replaced its own
    assert row["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert row["username"] == "einstein" and row["login_state"] is None


async def test_a_page_without_a_session_sends_the_browser_to_log_in_and_back(
    browser: Browser,
) -> None:
    response = await browser.client.get("/peers")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fpeers"

    landed = await browser.log_in("admin", next_path="/peers")

    assert landed.headers["location"] == "/peers"
    assert "<h1>Peers</h1>" in (await browser.client.get("/peers")).text


async def test_login_goes_back_only_to_a_path_of_this_site(browser: Browser) -> None:
    landed = await browser.log_in("einstein", next_path="//evil.example/x")
    assert landed.headers["location"] == "/"


async def test_a_callback_with_another_state_or_without_a_login_is_refused(
    browser: Browser, registry: Registry
) -> None:
    response = await browser.client.get("/login/callback", params={"code": "x", "state": "y"})
    assert response.status_code == 401
    assert "log in again" in response.text and response.headers["x-request-id"] in response.text

    await browser.client.get("/login")
    response = await browser.client.get("/login/callback", params={"code": "x", "state": "y"})
    assert response.status_code == 401
    assert "does not match" in response.text
    assert "spacereg_session=" not in response.headers.get("set-cookie", "")


async def test_a_code_the_idp_does_not_know_is_refused(browser: Browser) -> None:
    started = await browser.client.get("/login")
    state = httpx2.URL(started.headers["location"]).params["state"]
    response = await browser.client.get("/login/callback", params={"code": "x", "state": state})
    assert response.status_code == 401
    assert "refused the login" in response.text


async def test_behind_https_the_cookie_is_secure(tmp_path, idp_key_dir) -> None:
    with running_registry(tmp_path / "data", idp_key_dir, base_url="https://reg.example") as reg:
        async with httpx2.AsyncClient(base_url=reg.url) as client:
            started = await client.get("/login")
    cookie = started.headers["set-cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert started.headers["location"].startswith("https://reg.example/idp/authorize?")


async def test_a_form_without_the_csrf_token_is_refused_and_changes_nothing(
    browser: Browser, registry: Registry
) -> None:
    await browser.log_in("admin")
    token = await browser.csrf()

    for form, headers in (
        ({"name": "Forged"}, {}),
        ({"name": "Forged", "csrf": "not-the-token"}, {}),
        ({"name": "Forged", "csrf": token}, {"Origin": "https://evil.example"}),
    ):
        response = await browser.client.post("/spaces", data=form, headers=headers)
        assert response.status_code == 403, response.text
        assert "security token" in response.text or "this site" in response.text
    assert "Forged" not in (await browser.client.get("/")).text

    response = await browser.client.post("/spaces", data={"name": "Genuine", "csrf": token})
    assert response.status_code == 303
    assert "Genuine" in (await browser.client.get(response.headers["location"])).text


async def test_logout_ends_the_session(browser: Browser, registry: Registry) -> None:
    await browser.log_in("einstein")
    token = browser.client.cookies["spacereg_session"]
    csrf = await browser.csrf()

    refused = await browser.client.post("/logout", data={})
    assert refused.status_code == 403
    response = await browser.client.post("/logout", data={"csrf": csrf})

    assert response.status_code == 303 and response.headers["location"] == "/logged-out"
    assert await session_rows(registry) == []
    async with httpx2.AsyncClient(base_url=registry.url, cookies={"spacereg_session": token}) as c:
        assert (await c.get("/")).status_code == 303  # the old cookie is worth nothing
    assert "Logged out" in (await browser.client.get("/logged-out")).text
