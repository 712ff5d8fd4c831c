"""Serving WebFinger (RFC 7033) and the other well-known documents, over real HTTPS."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx2
import pytest

from federation.jrd import OIDC_ISSUER_REL, OWNCLOUD_INSTANCE_REL, REGISTRY_REL
from registry.runtime.demo_ca import CertFiles
from tests.federation.conftest import Site

ALL_RELS = [OIDC_ISSUER_REL, REGISTRY_REL, OWNCLOUD_INSTANCE_REL]


@pytest.fixture
async def http(certs: CertFiles) -> AsyncIterator[httpx2.AsyncClient]:
    context = ssl.create_default_context(cafile=certs.ca_file)
    async with httpx2.AsyncClient(verify=context, timeout=5) as client:
        yield client


def at(site: Site, path: str) -> str:
    return f"https://127.0.0.1:{site.port}{path}"


async def finger(
    http: httpx2.AsyncClient, site: Site, *params: tuple[str, str], accept: str | None = None
) -> httpx2.Response:
    headers = {"Accept": accept} if accept else {}
    return await http.get(at(site, "/.well-known/webfinger"), params=list(params), headers=headers)


def assert_error(response: httpx2.Response, status: int, code: str) -> None:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.headers["access-control-allow-origin"] == "*"
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


async def test_account_gets_jrd_with_issuer_registry_and_owncloud_links(
    http: httpx2.AsyncClient, paris: Site
) -> None:
    response = await finger(http, paris, ("resource", "acct:marie@paris.test"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/jrd+json"
    assert response.headers["access-control-allow-origin"] == "*"
    jrd = response.json()
    assert jrd["subject"] == "acct:marie@paris.test"
    assert [link["rel"] for link in jrd["links"]] == ALL_RELS
    links = {link["rel"]: link for link in jrd["links"]}
    assert links[OIDC_ISSUER_REL]["href"] == paris.origin + "/idp"
    assert links[REGISTRY_REL]["href"] == paris.origin + "/.well-known/space-registry"
    assert links[OWNCLOUD_INSTANCE_REL]["href"] == paris.origin
    assert links[OWNCLOUD_INSTANCE_REL]["titles"]["en"]


async def test_domain_is_matched_case_insensitively(http: httpx2.AsyncClient, paris: Site) -> None:
    response = await finger(http, paris, ("resource", "acct:marie@PARIS.test"))
    assert response.status_code == 200
    assert response.json()["subject"] == "acct:marie@PARIS.test"


async def test_unknown_user_gets_the_same_answer_and_no_lookup(
    http: httpx2.AsyncClient, paris: Site
) -> None:
    """No enumeration: the answer does not depend on whether the user exists."""
    calls = paris.users.calls
    known = await finger(http, paris, ("resource", "acct:marie@paris.test"))
    unknown = await finger(http, paris, ("resource", "acct:nobody@paris.test"))
    assert unknown.status_code == known.status_code == 200
    assert unknown.json()["links"] == known.json()["links"]
    assert paris.users.calls == calls


async def test_registry_configured_to_reveal_users_answers_404_for_unknown(
    http: httpx2.AsyncClient, sites: dict[str, Site]
) -> None:
    closed = sites["closed"]
    domain = closed.instance.domain
    assert (await finger(http, closed, ("resource", f"acct:marie@{domain}"))).status_code == 200
    assert_error(
        await finger(http, closed, ("resource", f"acct:nobody@{domain}")), 404, "not_found"
    )


@pytest.mark.parametrize(
    ("rels", "expected"),
    [
        ([OIDC_ISSUER_REL], [OIDC_ISSUER_REL]),
        ([REGISTRY_REL, OWNCLOUD_INSTANCE_REL], [REGISTRY_REL, OWNCLOUD_INSTANCE_REL]),
        (["http://example.test/rel/unknown"], []),
    ],
)
async def test_rel_filters_links_and_may_repeat(
    http: httpx2.AsyncClient, paris: Site, rels: list[str], expected: list[str]
) -> None:
    params = [("resource", "acct:marie@paris.test"), *(("rel", rel) for rel in rels)]
    jrd = (await finger(http, paris, *params)).json()
    assert [link["rel"] for link in jrd["links"]] == expected
    assert jrd["subject"] == "acct:marie@paris.test"


@pytest.mark.parametrize(
    "params",
    [
        [],
        [("resource", "")],
        [("resource", "acct:marie@paris.test"), ("resource", "acct:einstein@paris.test")],
        [("resource", "marie@paris.test")],
        [("resource", "acct:marie")],
        [("resource", "acct:@paris.test")],
        [("resource", "acct:marie@paris..test")],
        [("resource", "acct:marie@paris.test:99999")],
        [("resource", "acct:ma rie@paris.test")],
        [("resource", "https://")],
        [("resource", "https://[")],
        [("resource", "http://[::1/x")],
        [("resource", "https://a]b")],
        [("resource", "acct:" + "m" * 2000 + "@paris.test")],
    ],
)
async def test_missing_or_malformed_resource_is_400(
    http: httpx2.AsyncClient, paris: Site, params: list[tuple[str, str]]
) -> None:
    assert_error(await finger(http, paris, *params), 400, "invalid_request")


@pytest.mark.parametrize(
    "resource",
    [
        "acct:marie@zurich.test",
        "acct:marie@paris.test:8443",
        "https://zurich.test/",
        "http://registry.paris.test/",  # our host, but plain http is not our URL
        "mailto:marie@paris.test",
        "urn:uuid:4c1e0d5a-1111-2222-3333-444455556666",
    ],
)
async def test_resource_that_is_not_ours_is_404(
    http: httpx2.AsyncClient, paris: Site, resource: str
) -> None:
    assert_error(await finger(http, paris, ("resource", resource)), 404, "not_found")


@pytest.mark.parametrize("suffix", ["", "/", "/Some/Path?x=1"])
async def test_https_url_resource_subject_echoes_exactly(
    http: httpx2.AsyncClient, paris: Site, suffix: str
) -> None:
    resource = paris.origin.replace("registry", "REGISTRY") + suffix
    response = await finger(http, paris, ("resource", resource))
    assert response.status_code == 200
    assert response.json()["subject"] == resource


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "application/jrd+json"),
        ("*/*", "application/jrd+json"),
        ("application/jrd+json", "application/jrd+json"),
        ("application/json", "application/json"),
        ("application/json, application/jrd+json", "application/jrd+json"),
        ("application/jrd+json;q=0, application/json", "application/json"),
        ("text/html", "application/jrd+json"),
    ],
)
async def test_content_type_follows_accept(
    http: httpx2.AsyncClient, paris: Site, accept: str | None, expected: str
) -> None:
    response = await finger(http, paris, ("resource", "acct:marie@paris.test"), accept=accept)
    assert response.headers["content-type"] == expected


async def test_owncloud_desktop_client_finds_the_instance(
    http: httpx2.AsyncClient, paris: Site
) -> None:
    """The desktop client asks with the server URL, wants application/json, reads href."""
    response = await finger(
        http,
        paris,
        ("resource", paris.origin),
        ("rel", OWNCLOUD_INSTANCE_REL),
        accept="application/json",
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["subject"] == paris.origin
    assert body["links"] == [
        {
            "rel": OWNCLOUD_INSTANCE_REL,
            "href": paris.origin,
            "titles": {"en": "spacereg at paris.test", "und": "spacereg at paris.test"},
        }
    ]


async def test_owncloud_mobile_client_finds_the_instance_for_a_user(
    http: httpx2.AsyncClient, paris: Site
) -> None:
    resource = quote("acct:marie@paris.test", safe="")
    rel = quote(OWNCLOUD_INSTANCE_REL)
    url = at(paris, f"/.well-known/webfinger?resource={resource}&rel={rel}")
    body = (await http.get(url)).json()
    assert [link["href"] for link in body["links"]] == [paris.origin]


async def test_cors_preflight_and_other_methods(http: httpx2.AsyncClient, paris: Site) -> None:
    preflight = await http.options(at(paris, "/.well-known/webfinger"))
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "GET" in preflight.headers["access-control-allow-methods"]
    posted = await http.post(at(paris, "/.well-known/webfinger?resource=acct:marie@paris.test"))
    assert_error(posted, 405, "method_not_allowed")


async def test_metadata_document(http: httpx2.AsyncClient, paris: Site) -> None:
    response = await http.get(at(paris, "/.well-known/space-registry"))
    assert response.headers["access-control-allow-origin"] == "*"
    assert "max-age=" in response.headers["cache-control"]
    doc = response.json()
    assert doc["metadata_version"] == "1.0"
    assert doc["domain"] == "paris.test"
    assert doc["base_url"] == paris.origin
    assert set(doc["endpoints"]) == {"drives", "ocm"}
    assert doc["issuers"] == [paris.origin + "/idp"]
    assert doc["jwks_uri"] == paris.origin + "/.well-known/jwks.json"
    assert doc["software"] == {"name": "spacereg", "version": "0.1.0-test"}


async def test_jwks_publishes_the_ed25519_signing_key(
    http: httpx2.AsyncClient, paris: Site
) -> None:
    response = await http.get(at(paris, "/.well-known/jwks.json"))
    assert response.headers["content-type"] == "application/jwk-set+json"
    (key,) = response.json()["keys"]
    assert key["kty"] == "OKP" and key["crv"] == "Ed25519" and key["alg"] == "EdDSA"
    assert key["kid"] == paris.keys.active.kid and "d" not in key


@pytest.mark.parametrize("path", ["/.well-known/ocm", "/ocm-provider", "/ocm-provider/"])
async def test_ocm_discovery(http: httpx2.AsyncClient, paris: Site, path: str) -> None:
    doc = (await http.get(at(paris, path))).json()
    assert doc["apiVersion"].startswith("1.")
    assert doc["endPoint"] == paris.origin + "/ocm"
    assert doc["enabled"] is False  # until the sharing API exists
    assert doc["resourceTypes"][0]["name"] == "file"
    assert doc["resourceTypes"][0]["protocols"] == {"webdav": "/dav/ocm/"}
    assert doc["capabilities"] == ["http-sig"] and doc["criteria"] == ["must-use-http-sig"]
    assert doc["jwksUri"] == paris.origin + "/.well-known/jwks.json"


async def test_ocm_api_answers_501_until_sharing_lands(
    http: httpx2.AsyncClient, paris: Site
) -> None:
    response = await http.post(at(paris, "/ocm/shares"), json={"shareWith": "x@y"})
    assert_error(response, 501, "not_implemented")
