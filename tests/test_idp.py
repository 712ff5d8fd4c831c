"""The embedded IdP over HTTP: discovery, login form, code flow with PKCE, refresh rotation."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.clock import FakeClock
from tests.conftest import running_registry

REDIRECT = "http://127.0.0.1:9999/callback"


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def authorize_params(challenge: str, **extra: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": "desktop",
        "redirect_uri": REDIRECT,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "xyz",
        "scope": "openid profile offline_access",
        "nonce": "n-1",
        **extra,
    }


async def log_in(client, challenge: str, username="einstein", password="relativity"):
    return await client.post(
        "/idp/authorize",
        data={**authorize_params(challenge), "username": username, "password": password},
    )


async def code_from(response) -> str:
    assert response.status_code == 302, response.text
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    query = parse_qs(location.query)
    assert query["state"] == ["xyz"]
    return query["code"][0]


async def exchange(client, code: str, verifier: str, **extra: str):
    return await client.post(
        "/idp/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": "desktop",
            "code_verifier": verifier,
            **extra,
        },
    )


async def test_discovery_document_names_this_issuer(registry):
    async with registry.client() as client:
        config = (await client.get("/idp/.well-known/openid-configuration")).json()
        assert config["issuer"] == f"{registry.url}/idp"
        assert config["code_challenge_methods_supported"] == ["S256"]
        keys = (await client.get(config["jwks_uri"].removeprefix(registry.url))).json()["keys"]
    assert keys and all("d" not in key for key in keys)


async def test_code_flow_with_pkce_gives_tokens_that_list_drives(registry):
    verifier, challenge = pkce()
    async with registry.client() as client:
        form = await client.get("/idp/authorize", params=authorize_params(challenge))
        assert form.status_code == 200
        assert 'name="password"' in form.text
        code = await code_from(await log_in(client, challenge))
        response = await exchange(client, code, verifier)
        assert response.status_code == 200, response.text
        tokens = response.json()
        assert tokens["token_type"] == "Bearer"
        assert tokens["id_token"] and tokens["refresh_token"]
        drives = await client.get(
            "/graph/v1.0/me/drives", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
    assert [d["driveAlias"] for d in drives.json()["value"]] == ["personal/einstein"]


async def test_wrong_password_shows_the_form_again(registry):
    _, challenge = pkce()
    async with registry.client() as client:
        response = await log_in(client, challenge, password="wrong")
    assert response.status_code == 401
    assert "Wrong username or password" in response.text
    assert 'value="einstein"' in response.text


async def test_unknown_user_is_refused_the_same_way(registry):
    _, challenge = pkce()
    async with registry.client() as client:
        response = await log_in(client, challenge, username="nobody")
    assert response.status_code == 401
    assert "Wrong username or password" in response.text


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"response_type": "token"}, "response_type"),
        ({"redirect_uri": "https://evil.example/cb"}, "redirect_uri"),
        ({"code_challenge_method": "plain"}, "PKCE"),
        ({"code_challenge": ""}, "PKCE"),
        ({"client_id": ""}, "client_id"),
    ],
)
async def test_bad_authorization_requests_are_refused_without_redirect(registry, override, message):
    _, challenge = pkce()
    async with registry.client() as client:
        response = await client.get(
            "/idp/authorize", params=authorize_params(challenge, **override)
        )
    assert response.status_code == 400
    assert message in response.text
    assert "location" not in response.headers


async def test_a_code_is_used_once(registry):
    verifier, challenge = pkce()
    async with registry.client() as client:
        code = await code_from(await log_in(client, challenge))
        assert (await exchange(client, code, verifier)).status_code == 200
        again = await exchange(client, code, verifier)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


async def test_a_code_expires_after_a_minute(tmp_path, idp_key_dir):
    clock = FakeClock()
    with running_registry(tmp_path / "data", idp_key_dir, clock=clock) as registry:
        verifier, challenge = pkce()
        async with registry.client() as client:
            code = await code_from(await log_in(client, challenge))
            clock.advance(timedelta(seconds=61))
            late = await exchange(client, code, verifier)
            code = await code_from(await log_in(client, challenge))
            clock.advance(timedelta(seconds=59))
            in_time = await exchange(client, code, verifier)
    assert late.status_code == 400
    assert late.json()["error"] == "invalid_grant"
    assert in_time.status_code == 200


async def test_a_wrong_verifier_is_refused(registry):
    _, challenge = pkce()
    other_verifier, _ = pkce()
    async with registry.client() as client:
        code = await code_from(await log_in(client, challenge))
        response = await exchange(client, code, other_verifier)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_a_code_is_bound_to_its_redirect_and_client(registry):
    verifier, challenge = pkce()
    async with registry.client() as client:
        code = await code_from(await log_in(client, challenge))
        response = await exchange(
            client, code, verifier, redirect_uri="http://127.0.0.1:9999/other"
        )
        assert response.json()["error"] == "invalid_grant"
        code = await code_from(await log_in(client, challenge))
        response = await exchange(client, code, verifier, client_id="another")
        assert response.json()["error"] == "invalid_grant"


async def test_refresh_tokens_rotate_and_are_single_use(registry):
    verifier, challenge = pkce()
    async with registry.client() as client:
        code = await code_from(await log_in(client, challenge))
        first = (await exchange(client, code, verifier)).json()
        refresh = {"grant_type": "refresh_token", "client_id": "desktop"}
        second = await client.post(
            "/idp/token", data={**refresh, "refresh_token": first["refresh_token"]}
        )
        assert second.status_code == 200
        assert second.json()["refresh_token"] != first["refresh_token"]
        reused = await client.post(
            "/idp/token", data={**refresh, "refresh_token": first["refresh_token"]}
        )
        assert reused.status_code == 400
        assert reused.json()["error"] == "invalid_grant"


async def test_token_endpoint_failures(registry):
    async with registry.client() as client:
        response = await client.post(
            "/idp/token", data={"grant_type": "password", "client_id": "desktop"}
        )
        assert response.json()["error"] == "unsupported_grant_type"
        response = await client.post("/idp/token", data={"grant_type": "refresh_token"})
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_client"


async def test_userinfo_needs_a_token_of_this_issuer(registry):
    async with registry.client("marie") as marie:
        info = (await marie.get("/idp/userinfo")).json()
    assert info["preferred_username"] == "marie"
    async with registry.client() as anonymous:
        assert (await anonymous.get("/idp/userinfo")).status_code == 401


async def test_login_form_escapes_what_it_echoes(registry):
    _, challenge = pkce()
    async with registry.client() as client:
        response = await client.get(
            "/idp/authorize",
            params=authorize_params(challenge, state='"><script>alert(1)</script>'),
        )
    assert "<script>alert(1)" not in response.text
    assert re.search(r'name="state" value="&quot;&gt;&lt;script&gt;', response.text)
