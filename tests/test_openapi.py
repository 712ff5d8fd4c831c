"""registry/openapi.yaml is a valid OpenAPI 3.0 document, describes every route the app serves
(the federation endpoints included), and the answers of a live registry match it."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from openapi_spec_validator import validate
from starlette.routing import BaseRoute, Mount, Route

from registry.access.roles import UNIFIED_ROLE_IDS, VIEWER
from tests.conftest import Registry, build_app, registry_settings
from tests.schema import OPENAPI_FILE, assert_matches_openapi, openapi_document

METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}
FEDERATION = ("/.well-known/", "/ocm-provider")  # their errors have the federation shape


def app_operations(routes: list[BaseRoute], prefix: str = "") -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for route in routes:
        if isinstance(route, Mount):
            found |= app_operations(list(route.routes), prefix + route.path)
        elif isinstance(route, Route):
            methods = {m.lower() for m in route.methods or {"GET"}}
            if "get" in methods:
                methods.discard("head")  # Starlette answers HEAD for every GET route
            found |= {(_shape(prefix + route.path), m) for m in methods}
    return found


def documented_operations() -> set[tuple[str, str]]:
    return {
        (_shape(path), method)
        for path, item in openapi_document()["paths"].items()
        for method in item
        if method in METHODS
    }


def _shape(path: str) -> str:
    """Path parameters renamed to `{}`, so `{id}` and `{drive-id}` compare equal."""
    return re.sub(r"\{[^}]*\}", "{}", path)


def test_openapi_document_is_valid_openapi_3_0() -> None:
    document = openapi_document()

    validate(document)
    assert document["openapi"].startswith("3.0.")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, idp_key_dir: Path) -> set[tuple[str, str]]:
    """The operations of the registry's app (built, not served)."""
    settings = registry_settings(tmp_path_factory.mktemp("openapi") / "data", 8080)
    return app_operations(list(build_app(settings, idp_key_dir).routes))


def test_every_app_route_is_documented_with_its_methods(served: set[tuple[str, str]]) -> None:
    assert served, "the app has no routes"
    assert sorted(served - documented_operations()) == []


def test_every_documented_operation_is_served(served: set[tuple[str, str]]) -> None:
    assert sorted(documented_operations() - served) == []


def test_every_error_response_uses_the_error_schema_of_its_part() -> None:
    """Registry errors have LibreGraph's shape, federation errors their own; a 500 (an
    unexpected exception, caught by the registry's handler) is always a registry error."""
    document = openapi_document()
    for path, item in document["paths"].items():
        if path.startswith("/idp/") or path == "/ocm/token":
            continue  # OAuth errors and HTML pages there
        for method, operation in item.items():
            if method not in METHODS or "web" in operation.get("tags", ()):
                continue  # the web UI's errors are pages
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    ref = response.get("$ref", "")
                    target = document["components"]["responses"][ref.rsplit("/", 1)[-1]]
                    schema = target["content"]["application/json"]["schema"]
                    shape = "federationError"
                    if status == "500" or not path.startswith(FEDERATION):
                        shape = "error"
                    expected = {"$ref": f"#/components/schemas/{shape}"}
                    assert schema == expected, (path, method, status)


def allowed(response: httpx2.Response) -> set[str]:
    return {method.strip() for method in response.headers["allow"].split(",")}


async def test_every_path_names_all_its_methods_in_options_and_in_405(registry: Registry) -> None:
    """OPTIONS answers the methods a path takes (and HEAD with GET); a method it does not take
    answers 405 naming the same ones. (Federation paths answer CORS preflights and their own
    405, see test_federation_endpoints_answer_as_documented.)"""
    async with registry.client("einstein") as client:
        for template, item in openapi_document()["paths"].items():
            if template.startswith(FEDERATION):
                continue
            methods = {m.upper() for m in item if m in METHODS}
            methods |= {"HEAD"} if "GET" in methods else set()
            path = re.sub(r"\{[^}]*\}", "x", template)
            response = await client.options(path)
            assert response.status_code == 204, (path, response.text)
            assert allowed(response) == methods, path
            refused = next(m for m in ("PUT", "PATCH", "DELETE", "POST") if m not in methods)
            response = await client.request(refused, path)
            assert response.status_code == 405, (refused, path, response.text)
            assert allowed(response) == methods, (refused, path)


async def test_drive_endpoints_answer_as_documented(registry: Registry) -> None:
    admin, einstein, anonymous = (
        registry.client("admin"),
        registry.client("einstein"),
        registry.client(),
    )
    async with admin, einstein, anonymous:
        for version in ("v1.0", "v1beta1"):
            graph = f"/graph/{version}"
            check = assert_matches_openapi
            check(await anonymous.get("/healthz"), "/healthz", "get")
            check(await anonymous.get(f"{graph}/me/drives"), f"{graph}/me/drives", "get")
            check(await einstein.get(f"{graph}/me/drives"), f"{graph}/me/drives", "get")
            response = await einstein.get(f"{graph}/me/drives", params={"$filter": "name eq 'x'"})
            assert response.status_code == 501
            check(response, f"{graph}/me/drives", "get")
            response = await einstein.get(f"{graph}/drives", params={"$skiptoken": "!!"})
            assert response.status_code == 400
            check(response, f"{graph}/drives", "get")
            check(await einstein.get(f"{graph}/me/drive"), f"{graph}/me/drive", "get")

            created = await admin.post(f"{graph}/drives", json={"name": f"Lab {version[:2]}"})
            assert created.status_code == 201
            check(created, f"{graph}/drives", "post")
            drive_id = created.json()["id"]
            one = f"{graph}/drives/{{id}}"
            response = await einstein.post(f"{graph}/drives", json={"name": "Mine"})
            assert response.status_code == 403
            check(response, f"{graph}/drives", "post")
            response = await admin.post(f"{graph}/drives", json={"name": "a/b"})
            assert response.status_code == 400
            check(response, f"{graph}/drives", "post")
            response = await admin.post(f"{graph}/drives", content=b"x" * 70_000)
            assert response.status_code == 413
            check(response, f"{graph}/drives", "post")

            check(await admin.get(f"{graph}/drives"), f"{graph}/drives", "get")
            check(await admin.get(f"{graph}/drives/{drive_id}"), one, "get")
            response = await einstein.get(f"{graph}/drives/{drive_id}")
            assert response.status_code == 404
            check(response, one, "get")
            response = await admin.patch(f"{graph}/drives/{drive_id}", json={"description": "d"})
            assert response.status_code == 200
            check(response, one, "patch")
            response = await admin.delete(f"{graph}/drives/{drive_id}", headers={"Purge": "T"})
            assert response.status_code == 409
            check(response, one, "delete")
            response = await admin.delete(f"{graph}/drives/{drive_id}")
            assert response.status_code == 204
            check(response, one, "delete")
            response = await admin.patch(f"{graph}/drives/{drive_id}", headers={"Restore": "T"})
            assert response.status_code == 200
            check(response, one, "patch")


async def test_permission_endpoints_answer_as_documented(registry: Registry) -> None:
    async with registry.client("admin") as admin, registry.client("einstein") as einstein:
        drive_id = (await admin.post("/graph/v1beta1/drives", json={"name": "Shared"})).json()["id"]
        root = f"/graph/v1beta1/drives/{drive_id}/root"
        invite = {"recipients": [{"objectId": "einstein"}], "roles": [UNIFIED_ROLE_IDS[VIEWER]]}

        response = await admin.post(f"{root}/invite", json=invite)
        assert response.status_code == 200
        assert_matches_openapi(response, "/graph/v1beta1/drives/{id}/root/invite", "post")
        permission_id = response.json()["value"][0]["id"]
        response = await admin.post(f"{root}/invite", json=invite)
        assert response.status_code == 409
        assert_matches_openapi(response, "/graph/v1beta1/drives/{id}/root/invite", "post")
        response = await einstein.post(f"{root}/invite", json=invite)
        assert response.status_code == 403
        assert_matches_openapi(response, "/graph/v1beta1/drives/{id}/root/invite", "post")

        listed = await einstein.get(f"{root}/permissions")
        assert listed.status_code == 200
        assert_matches_openapi(listed, "/graph/v1beta1/drives/{id}/root/permissions", "get")
        manager_id = next(p["id"] for p in listed.json()["value"] if p["id"] != permission_id)

        one = "/graph/v1beta1/drives/{id}/root/permissions/{perm_id}"
        response = await admin.patch(
            f"{root}/permissions/{permission_id}", json={"roles": ["editor"]}
        )
        assert response.status_code == 200
        assert_matches_openapi(response, one, "patch")
        response = await admin.patch(f"{root}/permissions/{permission_id}", json={})
        assert response.status_code == 400
        assert_matches_openapi(response, one, "patch")
        response = await admin.delete(f"{root}/permissions/{manager_id}")
        assert response.status_code == 409
        assert_matches_openapi(response, one, "delete")
        response = await admin.delete(f"{root}/permissions/{permission_id}")
        assert response.status_code == 204
        assert_matches_openapi(response, one, "delete")
        response = await admin.delete(f"{root}/permissions/{permission_id}")
        assert response.status_code == 404
        assert_matches_openapi(response, one, "delete")

        roles = "/graph/v1beta1/roleManagement/permissions/roleDefinitions"
        assert_matches_openapi(await einstein.get(roles), roles, "get")
        response = await einstein.get(f"{roles}/{UNIFIED_ROLE_IDS[VIEWER]}")
        assert response.status_code == 200
        assert_matches_openapi(response, f"{roles}/{{role_id}}", "get")
        response = await einstein.get(f"{roles}/no-such-role")
        assert response.status_code == 404
        assert_matches_openapi(response, f"{roles}/{{role_id}}", "get")


async def test_idp_endpoints_answer_as_documented(registry: Registry) -> None:
    verifier = "v" * 50
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    redirect_uri = "http://127.0.0.1:9/callback"
    params = {
        "response_type": "code",
        "client_id": "test-client",
        "redirect_uri": redirect_uri,
        "code_challenge": challenge.decode(),
        "code_challenge_method": "S256",
        "scope": "openid profile",
        "state": "s1",
    }
    async with registry.client() as browser:
        for path in ("/idp/.well-known/openid-configuration", "/idp/jwks"):
            assert_matches_openapi(await browser.get(path), path, "get")
        response = await browser.get("/idp/authorize", params=params)
        assert response.status_code == 200
        assert_matches_openapi(response, "/idp/authorize", "get")
        response = await browser.get("/idp/authorize", params={**params, "response_type": "x"})
        assert response.status_code == 400
        assert_matches_openapi(response, "/idp/authorize", "get")

        login = {**params, "username": "einstein", "password": "wrong"}
        response = await browser.post("/idp/authorize", data=login)
        assert response.status_code == 401
        assert_matches_openapi(response, "/idp/authorize", "post")
        response = await browser.post("/idp/authorize", data={**login, "password": "relativity"})
        assert response.status_code == 302
        assert_matches_openapi(response, "/idp/authorize", "post")
        code = parse_qs(urlsplit(response.headers["location"]).query)["code"][0]

        grant = {
            "grant_type": "authorization_code",
            "client_id": "test-client",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        }
        tokens = await browser.post("/idp/token", data=grant)
        assert tokens.status_code == 200
        assert_matches_openapi(tokens, "/idp/token", "post")
        response = await browser.post("/idp/token", data=grant)
        assert response.status_code == 400
        assert_matches_openapi(response, "/idp/token", "post")
        response = await browser.post("/idp/token", data={**grant, "client_id": ""})
        assert response.status_code == 401
        assert_matches_openapi(response, "/idp/token", "post")

        bearer = {"Authorization": f"Bearer {tokens.json()['access_token']}"}
        response = await browser.get("/idp/userinfo", headers=bearer)
        assert response.status_code == 200
        assert_matches_openapi(response, "/idp/userinfo", "get")
        response = await browser.get("/idp/userinfo")
        assert response.status_code == 401
        assert_matches_openapi(response, "/idp/userinfo", "get")


def test_document_ships_with_the_package() -> None:
    assert OPENAPI_FILE.is_file()
    assert isinstance(httpx2.Response, type)


async def test_federation_endpoints_answer_as_documented(registry: Registry) -> None:
    domain = urlsplit(registry.url).netloc
    webfinger = "/.well-known/webfinger"
    async with registry.client() as anyone:  # the client checks every answer, too
        response = await anyone.get(webfinger, params={"resource": f"acct:marie@{domain}"})
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/jrd+json"
        assert_matches_openapi(response, webfinger, "get")
        response = await anyone.get(
            webfinger,
            params={"resource": registry.url, "rel": "http://openid.net/specs/connect/1.0/issuer"},
            headers={"Accept": "application/json"},
        )
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert [link["href"] for link in response.json()["links"]] == [registry.url + "/idp"]
        assert_matches_openapi(response, webfinger, "get")
        for params, status in [({}, 400), ({"resource": "acct:marie@elsewhere.test"}, 404)]:
            response = await anyone.get(webfinger, params=params)
            assert response.status_code == status
            assert_matches_openapi(response, webfinger, "get")
        response = await anyone.options(webfinger)
        assert response.status_code == 204
        assert_matches_openapi(response, webfinger, "options")

        for path in (
            "/.well-known/space-registry",
            "/.well-known/jwks.json",
            "/.well-known/ocm",
            "/ocm-provider",
            "/ocm-provider/",
        ):
            response = await anyone.get(path)
            assert response.status_code == 200
            assert_matches_openapi(response, path, "get")
            response = await anyone.delete(path)
            assert response.status_code == 405
            assert_matches_openapi(response, path, "delete")
        response = await anyone.post("/ocm/shares", json={})
        assert response.status_code == 400
        assert {e["name"] for e in response.json()["validationErrors"]} >= {"shareWith", "owner"}
        assert_matches_openapi(response, "/ocm/shares", "post")


def test_federation_answers_are_checked_by_their_schemas() -> None:
    request = httpx2.Request("GET", "https://paris.test/.well-known/webfinger?resource=x")
    cors = {"Access-Control-Allow-Origin": "*"}
    jrd = {**cors, "Cache-Control": "max-age=600", "Content-Type": "application/jrd+json"}
    no_subject = httpx2.Response(200, content=b'{"links": []}', headers=jrd, request=request)
    with pytest.raises(AssertionError, match="'subject' is a required property"):
        assert_matches_openapi(no_subject, "/.well-known/webfinger", "get")
    without_cors = httpx2.Response(400, json={"error": {"code": "x", "message": "y"}})
    without_cors.request = request
    with pytest.raises(AssertionError, match="Access-Control-Allow-Origin missing"):
        assert_matches_openapi(without_cors, "/.well-known/webfinger", "get")

    registry_shaped = {"error": {"code": "x", "message": "y", "innererror": {}}}
    wrong_error = httpx2.Response(400, json=registry_shaped, headers=cors, request=request)
    with pytest.raises(AssertionError, match="Additional properties"):
        assert_matches_openapi(wrong_error, "/.well-known/webfinger", "get")
