"""Logging in at a partner with one's home identity: Marie opens Einstein's share link at
zurich, picks "log in with your own organisation", logs in at paris's embedded IdP and comes
back to the shared folder, as the partner's user `marie@paris.test` who sees that share and
nothing else of zurich, by the web UI and by the API; once zurich revokes paris, her token
and her session are refused.

Two real registries over TLS on `*.test` (tests/federation/peer_pair.py); Marie's "browser"
is httpx, reaching those names through the tests' DNS server as the registries do, keeping
cookies, following each redirect by hand and submitting paris's login form."""

from __future__ import annotations

import re
import ssl
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
import pytest
from playwright.async_api import BrowserContext, expect

from federation.dns import DnsPythonResolver
from federation.netpolicy import NetworkPolicy
from federation.safe_http import CheckedNetworkBackend, _CheckedTransport
from registry.web.oidc_client import code_challenge
from tests.browser import assert_accessible
from tests.federation import peer_pair
from tests.federation.peer_pair import LOOPBACK, Pair, Site, peered, state_becomes
from tests.federation.test_shares import project_with_folder, share, state_at_zurich
from tests.schema import check_response
from tests.web.conftest import PASSWORDS

pair = peer_pair.pair  # the module's own pair of registries
HIDDEN = re.compile(r'type="hidden" name="([^"]+)" value="([^"]*)"')
VERIFIER = "v" * 64


@pytest.fixture
async def browser(pair: Pair) -> AsyncIterator[httpx2.AsyncClient]:
    """A cookie-keeping client that finds `*.test` names at the tests' DNS server (as
    Chromium does with its host resolver rules). Every answer is checked against the
    OpenAPI document."""
    backend = CheckedNetworkBackend(
        DnsPythonResolver([pair.dns.nameserver]), NetworkPolicy([LOOPBACK])
    )
    tls = ssl.create_default_context(cafile=pair.certs.ca_file)
    async with httpx2.AsyncClient(
        transport=_CheckedTransport(tls, backend),  # the registries' own way to such names
        timeout=15,
        event_hooks={"response": [check_response]},
    ) as client:
        yield client


def issuer(site: Site) -> str:
    assert site.services.idp is not None
    return site.services.idp.issuer


async def shared_with_marie(pair: Pair, name: str) -> tuple[str, str]:
    """A project space at zurich (Einstein manages it) and the share space of its folder
    `/a/rel/<name>`, shared with marie@paris.test."""
    await peered(pair)
    drive = await project_with_folder(pair, name.title(), leaf=name)
    assert (await share(pair.zurich, pair, drive, f"/a/rel/{name}")).status_code == 200
    sent = await state_at_zurich(pair, name, "pending")
    return drive, str(sent["remoteItem"]["driveId"])


async def sign_in_at_paris(browser: httpx2.AsyncClient, authorize: str) -> httpx2.Response:
    """Paris's login form, filled in by Marie; the IdP's redirect back to zurich."""
    form = await browser.get(authorize)
    assert form.status_code == 200, form.text
    fields = {k: v.replace("&amp;", "&") for k, v in HIDDEN.findall(form.text)}
    action = authorize.partition("?")[0]
    fields |= {"username": "marie", "password": PASSWORDS["marie"]}
    signed_in = await browser.post(action, data=fields)
    assert signed_in.status_code == 302, signed_in.text
    return signed_in


async def partner_session(pair: Pair, browser: httpx2.AsyncClient, share_space: str) -> str:
    """Marie's way from the share link to the shared folder; the page she lands on."""
    zurich = pair.zurich.base_url
    link = f"{zurich}/s/{share_space}/"
    offer = await browser.get(link)
    assert offer.status_code == 200, offer.text
    assert "Log in with your own organisation" in offer.text and "paris.test" in offer.text
    started = await browser.get(
        f"{zurich}/login/partner", params={"who": "marie@paris.test", "next": f"/s/{share_space}/"}
    )
    assert started.status_code == 303, started.text
    authorize = started.headers["location"]
    asked = parse_qs(urlsplit(authorize).query)
    assert authorize.startswith(f"{issuer(pair.paris)}/authorize?")
    assert asked["client_id"] == ["zurich.test"] and asked["code_challenge_method"] == ["S256"]
    assert asked["redirect_uri"] == [f"{zurich}/login/partner/callback"]
    assert asked["nonce"] and asked["state"]
    back = await sign_in_at_paris(browser, authorize)
    assert back.headers["location"].startswith(f"{zurich}/login/partner/callback?")
    landed = await browser.get(back.headers["location"])
    assert (landed.status_code, landed.headers["location"]) == (303, f"/s/{share_space}/")
    folder = await browser.get(zurich + landed.headers["location"])
    assert folder.headers["location"] == f"/spaces/{share_space}"
    shown = await browser.get(zurich + folder.headers["location"])
    assert shown.status_code == 200, shown.text
    return shown.text


def zurich_asks(pair: Pair) -> dict[str, str]:
    """An authorization request of zurich (client `zurich.test`) at paris's IdP."""
    return {
        "response_type": "code",
        "client_id": "zurich.test",
        "redirect_uri": f"{pair.zurich.base_url}/login/partner/callback",
        "scope": "openid profile",
        "state": "s",
        "code_challenge": code_challenge(VERIFIER),
        "code_challenge_method": "S256",
    }


async def partner_token(pair: Pair, browser: httpx2.AsyncClient) -> dict[str, Any]:
    """The tokens paris's IdP gives zurich (its client `zurich.test`) for Marie: the code
    flow by hand, redeeming the code that zurich's callback would have redeemed."""
    query = zurich_asks(pair)
    back = await sign_in_at_paris(browser, f"{issuer(pair.paris)}/authorize?{urlencode(query)}")
    code = parse_qs(urlsplit(back.headers["location"]).query)["code"][0]
    redeemed = await browser.post(
        f"{issuer(pair.paris)}/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": query["redirect_uri"],
            "client_id": "zurich.test",
            "code_verifier": VERIFIER,
        },
    )
    assert redeemed.status_code == 200, redeemed.text
    return dict(redeemed.json())


def minted(pair: Pair, username: str, audience: str = "zurich.test", ttl_s: int = 300) -> str:
    """A token signed by paris's IdP with what paris's issuer would never say itself."""
    idp = pair.paris.services.idp
    assert idp is not None
    profile = {"preferred_username": username, "name": username}
    return idp.keys.access_token(idp.issuer, audience, username, profile, audience, ttl_s=ttl_s)


async def drives_at(site: Site, browser: httpx2.AsyncClient, token: str) -> httpx2.Response:
    return await browser.get(
        f"{site.base_url}/graph/v1.0/me/drives", headers={"Authorization": f"Bearer {token}"}
    )


async def test_marie_logs_in_with_paris_and_sees_the_share_and_nothing_else(
    pair: Pair,
    browser: httpx2.AsyncClient,
) -> None:
    drive, share_space = await shared_with_marie(pair, "optics")
    async with pair.zurich.client(pair.certs, "einstein") as einstein:
        shared = (await einstein.get(f"/graph/v1.0/drives/{share_space}")).json()
    assert shared["webUrl"] == f"{pair.zurich.base_url}/s/{share_space}/"

    page = await partner_session(pair, browser, share_space)

    assert "<h1>optics</h1>" in page and "hello.txt" in page
    assert "Marie Curie (marie@paris.test)" in page  # who she is here
    assert 'href="/shares"' not in page  # she receives no shares here
    spaces = (await browser.get(f"{pair.zurich.base_url}/")).text
    assert f"/spaces/{share_space}" in spaces and f"/spaces/{drive}" not in spaces
    other = await browser.get(f"{pair.zurich.base_url}/spaces/{drive}")
    assert other.status_code == 404


async def test_her_token_lists_the_share_space_only_and_opens_nothing_else(
    pair: Pair,
    browser: httpx2.AsyncClient,
) -> None:
    drive, share_space = await shared_with_marie(pair, "lenses")
    tokens = await partner_token(pair, browser)

    listed = await drives_at(pair.zurich, browser, tokens["access_token"])

    assert listed.status_code == 200, listed.text
    ids = {d["id"] for d in listed.json()["value"]}
    assert share_space in ids and drive not in ids
    mine = {d["driveType"] for d in listed.json()["value"]}
    assert mine == {"share"}  # no personal space, no Shares drive: only what was shared
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    other = await browser.get(f"{pair.zurich.base_url}/graph/v1.0/drives/{drive}", headers=bearer)
    assert other.status_code == 404
    local_only = await browser.get(
        f"{pair.zurich.base_url}/api/v1/me/app-passwords", headers=bearer
    )
    assert local_only.status_code == 403, local_only.text
    at_paris = await drives_at(pair.paris, browser, tokens["access_token"])
    assert at_paris.status_code == 401  # made for zurich: it opens nothing at paris


async def test_paris_s_issuer_speaks_only_for_paris_users_in_tokens_for_zurich(
    pair: Pair,
    browser: httpx2.AsyncClient,
) -> None:
    await peered(pair)
    assert (await drives_at(pair.zurich, browser, minted(pair, "marie"))).status_code == 200
    for name in ("einstein@zurich.test", "x@rome.test"):
        refused = await drives_at(pair.zurich, browser, minted(pair, name))
        assert refused.status_code == 401, name
        assert "cannot speak for users of another domain" in refused.text
    for_paris = await drives_at(pair.zurich, browser, minted(pair, "marie", audience="spacereg"))
    assert for_paris.status_code == 401 and "aud" in for_paris.text
    expired = await drives_at(pair.zurich, browser, minted(pair, "marie", ttl_s=-120))
    assert expired.status_code == 401 and "expired" in expired.text


async def test_the_login_form_starts_only_for_an_active_partner(
    pair: Pair,
    browser: httpx2.AsyncClient,
) -> None:
    await peered(pair)
    start = f"{pair.zurich.base_url}/login/partner"
    for who in ("nobody@unknown.test", "x@rome.test", "rome.test", "127.0.0.1"):
        refused = await browser.get(start, params={"who": who, "next": "/"})
        assert refused.status_code == 404, who
        assert "not a partner" in refused.text
    empty = await browser.get(start, params={"who": " ", "next": "/"})
    assert empty.status_code == 400
    picked = await browser.get(start, params={"who": "paris.test", "next": "//evil.example/"})
    assert picked.status_code == 303
    assert picked.headers["location"].startswith(f"{issuer(pair.paris)}/authorize?")


async def test_a_callback_of_another_login_or_state_is_refused(
    pair: Pair,
    browser: httpx2.AsyncClient,
) -> None:
    await peered(pair)
    callback = f"{pair.zurich.base_url}/login/partner/callback"
    assert (await browser.get(callback, params={"code": "c", "state": "s"})).status_code == 401
    started = await browser.get(
        f"{pair.zurich.base_url}/login/partner", params={"who": "marie@paris.test"}
    )
    back = await sign_in_at_paris(browser, started.headers["location"])
    real = parse_qs(urlsplit(back.headers["location"]).query)
    mismatch = await browser.get(callback, params={"code": real["code"][0], "state": "other"})
    assert mismatch.status_code == 401 and "does not match" in mismatch.text
    unknown = await browser.get(callback, params={"code": "guess", "state": real["state"][0]})
    assert unknown.status_code == 401 and "refused the login" in unknown.text


async def test_paris_s_idp_takes_zurich_as_a_client_at_zurich_s_address_only(
    pair: Pair,
    browser: httpx2.AsyncClient,
) -> None:
    await peered(pair)
    authorize, query = f"{issuer(pair.paris)}/authorize", zurich_asks(pair)
    assert (await browser.get(authorize, params=query)).status_code == 200
    elsewhere = {**query, "redirect_uri": "https://evil.example/callback"}
    assert (await browser.get(authorize, params=elsewhere)).status_code == 400
    stranger = {**query, "client_id": "rome.test"}  # no partner: a client of paris's own
    assert (await browser.get(authorize, params=stranger)).status_code == 400


async def test_the_form_is_throttled_like_sign_ins(
    pair: Pair,
    browser: httpx2.AsyncClient,
) -> None:
    start = f"{pair.zurich.base_url}/login/partner"
    statuses = [
        (await browser.get(start, params={"who": "guess@rome.test"})).status_code
        for _attempt in range(8)
    ]
    assert statuses[0] == 404 and statuses[-1] == 429


async def test_marie_uses_the_log_in_with_your_own_organisation_button_in_chromium(
    pair: Pair, browser_context: BrowserContext
) -> None:
    _drive, share_space = await shared_with_marie(pair, "mirrors")
    page = await browser_context.new_page()

    await page.goto(f"{pair.zurich.base_url}/s/{share_space}/")
    await expect(page.get_by_role("heading", name="Log in to open this share")).to_be_visible()
    await assert_accessible(page)
    await page.get_by_label("Your address at your organisation").fill("marie@paris.test")
    await page.get_by_role("button", name="Log in with your own organisation").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.url.startswith(f"{issuer(pair.paris)}/authorize?")
    await page.get_by_label("Username").fill("marie")
    await page.get_by_label("Password").fill(PASSWORDS["marie"])
    await page.get_by_role("button", name="Sign in").click()

    await expect(page.get_by_role("heading", name="mirrors", level=1)).to_be_visible()
    assert page.url == f"{pair.zurich.base_url}/spaces/{share_space}"
    await expect(page.get_by_role("link", name="hello.txt")).to_be_visible()
    await assert_accessible(page)


async def test_after_zurich_revokes_paris_her_token_and_session_are_refused(
    pair: Pair,
    browser: httpx2.AsyncClient,
) -> None:
    _drive, share_space = await shared_with_marie(pair, "prisms")
    await partner_session(pair, browser, share_space)
    tokens = await partner_token(pair, browser)
    assert (await drives_at(pair.zurich, browser, tokens["access_token"])).status_code == 200
    back = await sign_in_at_paris(
        browser, f"{issuer(pair.paris)}/authorize?{urlencode(zurich_asks(pair))}"
    )
    code = parse_qs(urlsplit(back.headers["location"]).query)["code"][0]  # not redeemed yet

    async with pair.zurich.client(pair.certs) as admin:
        assert (await admin.post("/api/v1/peers/paris.test/revoke")).status_code == 200

    refused = await drives_at(pair.zurich, browser, tokens["access_token"])
    assert refused.status_code == 401, refused.text
    page = await browser.get(f"{pair.zurich.base_url}/spaces/{share_space}")
    assert page.status_code == 303 and page.headers["location"].startswith("/login?")
    offer = await browser.get(f"{pair.zurich.base_url}/s/{share_space}/")
    assert offer.status_code == 303  # no partner left: our own login only
    # paris hears of it (a signed notice) and takes zurich as a client no more
    assert await state_becomes(pair.paris, pair.certs, "zurich.test", "revoked")
    asked = await browser.get(f"{issuer(pair.paris)}/authorize", params=zurich_asks(pair))
    assert asked.status_code == 400
    token_url = f"{issuer(pair.paris)}/token"
    late = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": zurich_asks(pair)["redirect_uri"],
        "client_id": "zurich.test",
        "code_verifier": VERIFIER,
    }
    refused_code = (await browser.post(token_url, data=late)).json()
    assert refused_code["error_description"] == "this client may no longer have tokens"
    refresh = {
        "grant_type": "refresh_token",
        "refresh_token": tokens["refresh_token"],
        "client_id": "zurich.test",
    }
    refused_refresh = (await browser.post(token_url, data=refresh)).json()
    assert refused_refresh["error_description"] == "this client may no longer have tokens"
