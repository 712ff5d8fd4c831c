"""The LibreGraph drives API over real HTTP: listing, creating, changing, disabling, purging."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from registry.core.models import ChangeRecord
from registry.spaces.service import PAGE_SIZE
from tests.conftest import running_registry

ME_DRIVES = "/graph/v1.0/me/drives"


async def create_project(client, name="Relativity", **extra):
    response = await client.post("/graph/v1.0/drives", json={"name": name, **extra})
    assert response.status_code == 201, response.text
    return response.json()


def assert_error(response, status, code):
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert error["innererror"]["request-id"] == response.headers["x-request-id"]
    assert error["innererror"]["date"].endswith("Z")


async def test_first_request_creates_the_personal_space(registry, einstein):
    response = await einstein.get(ME_DRIVES)
    assert response.status_code == 200
    [drive] = response.json()["value"]
    assert drive["driveType"] == "personal"
    assert drive["driveAlias"] == "personal/einstein"
    assert drive["name"] == "Albert Einstein"
    assert drive["root"]["webDavUrl"] == f"{registry.url}/dav/spaces/{drive['id']}"
    assert drive["webUrl"] == f"{registry.url}/s/{drive['id']}/"  # the share link
    assert drive["quota"] == {
        "total": registry.settings.default_personal_quota,
        "used": 0,
        "remaining": registry.settings.default_personal_quota,
        "state": "normal",
    }
    assert drive["root"]["eTag"].startswith('"')
    [permission] = drive["root"]["permissions"]
    assert permission["roles"] == ["manager"]
    assert permission["grantedToV2"]["user"]["displayName"] == "Albert Einstein"


async def test_v1beta1_lists_unified_role_ids(einstein):
    response = await einstein.get("/graph/v1beta1/me/drives")
    [drive] = response.json()["value"]
    assert drive["root"]["permissions"][0]["roles"] == ["312c0871-5ef7-4b3a-85b6-0e4074c64049"]


async def test_me_drive_is_the_personal_space(einstein):
    listed = (await einstein.get(ME_DRIVES)).json()["value"][0]
    response = await einstein.get("/graph/v1.0/me/drive")
    assert response.status_code == 200
    assert response.json()["id"] == listed["id"]


async def test_a_user_never_sees_a_space_without_a_role(registry, einstein, admin):
    project = await create_project(admin, "Secret plans")
    async with registry.client("marie") as marie:
        marie_drives = (await marie.get(ME_DRIVES)).json()["value"]
        assert project["id"] not in {d["id"] for d in marie_drives}
        assert_error(await marie.get(f"/graph/v1.0/drives/{project['id']}"), 404, "itemNotFound")
        all_for_marie = (await marie.get("/graph/v1.0/drives")).json()["value"]
        assert {d["driveAlias"] for d in all_for_marie} == {"personal/marie"}
    einstein_personal = (await einstein.get("/graph/v1.0/me/drive")).json()
    async with registry.client("richard") as richard:
        response = await richard.get(f"/graph/v1.0/drives/{einstein_personal['id']}")
        assert_error(response, 404, "itemNotFound")


async def test_admin_lists_every_space(admin):
    project = await create_project(admin, "Everything")
    aliases = {d["driveAlias"] for d in (await admin.get("/graph/v1.0/drives")).json()["value"]}
    assert {
        "personal/einstein",
        "personal/marie",
        "personal/admin",
        project["driveAlias"],
    } <= aliases


async def test_admin_creates_a_project_space_with_the_default_quota(registry, admin):
    response = await admin.post(
        "/graph/v1.0/drives", json={"name": "Quantum Gravity", "description": "big questions"}
    )
    assert response.status_code == 201
    drive = response.json()
    assert response.headers["location"].endswith(f"/graph/v1.0/drives/{drive['id']}")
    assert drive["driveType"] == "project"
    assert drive["driveAlias"] == "project/quantum-gravity"
    assert drive["description"] == "big questions"
    assert drive["quota"]["total"] == registry.settings.default_project_quota
    fetched = await admin.get(f"/graph/v1.0/drives/{drive['id']}")
    assert fetched.json()["name"] == "Quantum Gravity"


async def test_project_alias_stays_unique(admin):
    first = await create_project(admin, "Same name")
    second = await create_project(admin, "Same name")
    assert first["driveAlias"] == "project/same-name"
    assert second["driveAlias"] == "project/same-name-2"


async def test_project_quota_can_be_chosen_at_creation(admin):
    drive = await create_project(admin, "Small", quota={"total": 1000})
    assert drive["quota"] == {"total": 1000, "used": 0, "remaining": 1000, "state": "normal"}


async def test_non_admin_cannot_create_project_spaces(einstein):
    response = await einstein.post("/graph/v1.0/drives", json={"name": "Mine"})
    assert_error(response, 403, "accessDenied")


@pytest.mark.parametrize(
    "name",
    [
        "",
        "   ",
        "a" * 256,
        "a/b",
        "a\\b",
        "a.b",
        "a:b",
        "a?b",
        "a*b",
        'a"b',
        "a>b",
        "a<b",
        "a|b",
        42,
        None,
    ],
)
async def test_invalid_space_names_are_refused(admin, name):
    response = await admin.post("/graph/v1.0/drives", json={"name": name})
    assert_error(response, 400, "invalidRequest")


async def test_name_of_255_characters_is_accepted(admin):
    await create_project(admin, "n" * 255)


@pytest.mark.parametrize("body", [b"{not json", b"[]", b'"text"'])
async def test_malformed_bodies_are_refused(admin, body):
    response = await admin.post(
        "/graph/v1.0/drives", content=body, headers={"content-type": "application/json"}
    )
    assert_error(response, 400, "invalidRequest")


async def test_oversized_body_is_refused(admin):
    response = await admin.post(
        "/graph/v1.0/drives", json={"name": "x", "description": "y" * 100_000}
    )
    assert_error(response, 413, "requestTooLarge")


async def test_invalid_quota_at_creation_is_refused(admin):
    for quota in ({"total": -1}, {"total": "lots"}, "big", {"total": True}):
        response = await admin.post("/graph/v1.0/drives", json={"name": "Q", "quota": quota})
        assert_error(response, 400, "invalidRequest")
    names = {d["name"] for d in (await admin.get("/graph/v1.0/drives")).json()["value"]}
    assert "Q" not in names


async def test_only_project_spaces_can_be_created(admin):
    response = await admin.post("/graph/v1.0/drives", json={"name": "P", "driveType": "personal"})
    assert_error(response, 400, "invalidRequest")


async def test_filter_by_drive_type_and_id(admin):
    project = await create_project(admin, "Filtered")
    response = await admin.get(ME_DRIVES, params={"$filter": "driveType eq 'project'"})
    assert [d["id"] for d in response.json()["value"]] == [project["id"]]
    response = await admin.get(ME_DRIVES, params={"$filter": f"id eq '{project['id']}'"})
    assert [d["id"] for d in response.json()["value"]] == [project["id"]]
    response = await admin.get(
        ME_DRIVES, params={"$filter": "driveType eq 'project' or driveType eq 'personal'"}
    )
    assert len(response.json()["value"]) == 2
    response = await admin.get(
        ME_DRIVES, params={"$filter": "driveType eq 'project' and driveType eq 'personal'"}
    )
    assert response.json()["value"] == []


@pytest.mark.parametrize(
    "expression",
    [
        "driveType ne 'project'",
        "name eq 'x'",
        "contains(name, 'x')",
        "driveType eq 'a' and id eq 'b' or id eq 'c'",
        "driveType gt 'a'",
    ],
)
async def test_unsupported_filters_give_501(einstein, expression):
    response = await einstein.get(ME_DRIVES, params={"$filter": expression})
    assert_error(response, 501, "notSupported")


@pytest.mark.parametrize(
    "expression",
    [
        "driveType eq",
        "driveType eq project",
        "driveType 'x' eq",
        "driveType eq 'a' xor id eq 'b'",
        "'a' eq 'b'",
        "driveType eq 'unterminated",
        "driveType bogus 'x'",
    ],
)
async def test_malformed_filters_give_400(einstein, expression):
    response = await einstein.get(ME_DRIVES, params={"$filter": expression})
    assert_error(response, 400, "invalidRequest")


async def test_order_by_name_both_ways(admin):
    for name in ("Beta", "Alpha", "Gamma"):
        await create_project(admin, name)
    params = {"$filter": "driveType eq 'project'"}
    asc = await admin.get(ME_DRIVES, params={**params, "$orderby": "name asc"})
    assert [d["name"] for d in asc.json()["value"]] == ["Alpha", "Beta", "Gamma"]
    desc = await admin.get(ME_DRIVES, params={**params, "$orderby": "name desc"})
    assert [d["name"] for d in desc.json()["value"]] == ["Gamma", "Beta", "Alpha"]


async def test_order_by_last_modified(admin):
    first = await create_project(admin, "First")
    await create_project(admin, "Second")
    await admin.patch(f"/graph/v1.0/drives/{first['id']}", json={"description": "touched"})
    response = await admin.get(
        ME_DRIVES,
        params={"$filter": "driveType eq 'project'", "$orderby": "lastModifiedDateTime desc"},
    )
    assert [d["name"] for d in response.json()["value"]] == ["First", "Second"]


@pytest.mark.parametrize(
    ("orderby", "status", "code"),
    [
        ("size", 501, "notSupported"),
        ("name,id", 501, "notSupported"),
        ("name sideways", 400, "invalidRequest"),
        ("name asc extra", 400, "invalidRequest"),
    ],
)
async def test_bad_orderby(einstein, orderby, status, code):
    assert_error(await einstein.get(ME_DRIVES, params={"$orderby": orderby}), status, code)


async def test_unknown_query_option_is_refused(einstein):
    response = await einstein.get(ME_DRIVES, params={"$top": "5"})
    assert_error(response, 501, "notSupported")


async def test_listing_pages_after_one_hundred(admin):
    for index in range(PAGE_SIZE + 5):
        await create_project(admin, f"Project {index:03}")
    seen = []
    response = await admin.get(ME_DRIVES, params={"$filter": "driveType eq 'project'"})
    body = response.json()
    assert len(body["value"]) == PAGE_SIZE
    seen += [d["name"] for d in body["value"]]
    response = await admin.get(body["@odata.nextLink"])
    body = response.json()
    assert "@odata.nextLink" not in body
    seen += [d["name"] for d in body["value"]]
    assert seen == [f"Project {i:03}" for i in range(PAGE_SIZE + 5)]


async def test_malformed_skiptoken_is_refused(einstein):
    response = await einstein.get(ME_DRIVES, params={"$skiptoken": "!!!"})
    assert_error(response, 400, "invalidRequest")


async def test_manager_renames_and_describes(admin):
    project = await create_project(admin, "Old name")
    response = await admin.patch(
        f"/graph/v1.0/drives/{project['id']}",
        json={"name": "New name", "description": "now described"},
    )
    assert response.status_code == 200
    assert response.json()["name"] == "New name"
    assert response.json()["description"] == "now described"
    assert response.json()["lastModifiedDateTime"] > project["lastModifiedDateTime"]


async def test_quota_change_needs_an_admin(einstein, admin):
    personal = (await einstein.get("/graph/v1.0/me/drive")).json()
    url = f"/graph/v1.0/drives/{personal['id']}"
    response = await einstein.patch(url, json={"quota": {"total": 10}})
    assert_error(response, 403, "accessDenied")
    response = await admin.patch(url, json={"quota": {"total": 4000}})
    assert response.status_code == 200
    assert response.json()["quota"]["total"] == 4000
    unlimited = await admin.patch(url, json={"quota": {"total": 0}})
    assert unlimited.status_code == 200, unlimited.text
    assert unlimited.json()["quota"] == {"used": 0, "state": "normal"}


async def test_patch_failures(einstein, admin):
    project = await create_project(admin, "Patched")
    url = f"/graph/v1.0/drives/{project['id']}"
    assert_error(await admin.patch(url, json={}), 400, "invalidRequest")
    assert_error(await admin.patch(url, json={"name": "a/b"}), 400, "invalidRequest")
    assert_error(await admin.patch(url, json={"quota": {"total": -5}}), 400, "invalidRequest")
    assert_error(await admin.patch(url, json={"quota": 5}), 400, "invalidRequest")
    assert_error(await admin.patch(url, json={"description": 7}), 400, "invalidRequest")
    assert_error(await einstein.patch(url, json={"name": "x"}), 404, "itemNotFound")
    assert_error(
        await admin.patch("/graph/v1.0/drives/nope", json={"name": "x"}), 404, "itemNotFound"
    )
    unchanged = (await admin.get(url)).json()
    assert unchanged["name"] == "Patched"


async def test_viewer_cannot_change_a_space(registry, admin):
    project = await create_project(admin, "Viewed")
    marie_id = await user_id(registry, "marie")
    await admin.post(
        f"/graph/v1beta1/drives/{project['id']}/root/invite",
        json={
            "recipients": [{"objectId": marie_id}],
            "roles": ["a8d5fe5e-96e3-418d-825b-534dbdf22b99"],
        },
    )
    async with registry.client("marie") as marie:
        response = await marie.patch(f"/graph/v1.0/drives/{project['id']}", json={"name": "Mine"})
        assert_error(response, 403, "accessDenied")
        assert_error(await marie.delete(f"/graph/v1.0/drives/{project['id']}"), 403, "accessDenied")


async def user_id(registry, username):
    async with registry.client(username) as client:
        drive = (await client.get("/graph/v1.0/me/drive")).json()
    [permission] = drive["root"]["permissions"]
    return permission["grantedToV2"]["user"]["id"]


async def test_disable_restore_and_purge(admin):
    project = await create_project(admin, "Lifecycle")
    url = f"/graph/v1.0/drives/{project['id']}"
    purge = await admin.delete(url, headers={"Purge": "T"})
    assert_error(purge, 409, "conflict")
    assert (await admin.delete(url)).status_code == 204
    disabled = (await admin.get(url)).json()
    assert disabled["root"]["deleted"] == {"state": "trashed"}
    assert_error(await admin.patch(url, json={"name": "while disabled"}), 409, "conflict")
    restored = await admin.patch(url, headers={"Restore": "T"})
    assert restored.status_code == 200
    assert "deleted" not in restored.json()["root"]
    assert_error(await admin.patch(url, headers={"Restore": "T"}), 409, "conflict")
    assert (await admin.delete(url)).status_code == 204
    assert (await admin.delete(url, headers={"Purge": "T"})).status_code == 204
    assert_error(await admin.get(url), 404, "itemNotFound")
    assert_error(await admin.delete(url), 404, "itemNotFound")


async def test_purge_removes_the_space_from_its_provider(registry, admin):
    project = await create_project(admin, "Gone")
    directory = registry.settings.data_dir / "spaces" / project["id"]
    assert directory.is_dir()
    url = f"/graph/v1.0/drives/{project['id']}"
    await admin.delete(url)
    await admin.delete(url, headers={"Purge": "T"})
    assert not directory.exists()


async def test_only_admins_disable_personal_spaces(einstein):
    personal = (await einstein.get("/graph/v1.0/me/drive")).json()
    response = await einstein.delete(f"/graph/v1.0/drives/{personal['id']}")
    assert_error(response, 403, "accessDenied")


async def test_requests_without_a_valid_token_get_401(registry):
    async with registry.client() as anonymous:
        response = await anonymous.get(ME_DRIVES)
        assert_error(response, 401, "unauthenticated")
        assert response.headers["www-authenticate"].startswith("Bearer")
        response = await anonymous.get(ME_DRIVES, headers={"Authorization": "Bearer not-a-jwt"})
        assert_error(response, 401, "unauthenticated")
        response = await anonymous.get(ME_DRIVES, headers={"Authorization": "Basic eDp5"})
        assert_error(response, 401, "unauthenticated")


async def test_unknown_paths_and_methods_get_json_errors(einstein):
    assert_error(await einstein.get("/graph/v1.0/nothing-here"), 404, "itemNotFound")
    assert_error(await einstein.put(ME_DRIVES), 405, "methodNotAllowed")


async def test_every_change_is_in_the_change_log(registry, admin):
    project = await create_project(admin, "Logged")
    url = f"/graph/v1.0/drives/{project['id']}"
    await admin.patch(url, json={"name": "Logged again"})
    await admin.delete(url)
    await admin.patch(url, headers={"Restore": "T"})
    engine = registry.app.state.services.engine
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(ChangeRecord.kind)
                .where(ChangeRecord.space_id == project["id"])
                .order_by(ChangeRecord.seq)
            )
        ).all()
    assert [r.kind for r in rows] == ["created", "renamed", "disabled", "restored"]


async def test_each_type_of_space_goes_to_its_configured_provider(tmp_path, idp_key_dir):
    providers = [
        {"name": "home", "driver": "local", "root": str(tmp_path / "home")},
        {
            "name": "projects",
            "driver": "local",
            "root": str(tmp_path / "projects"),
            "drive_types": ["project"],
        },
    ]
    with running_registry(tmp_path / "data", idp_key_dir, providers=providers) as registry:
        async with registry.client("admin") as admin:
            project = await create_project(admin, "Elsewhere")
            personal = (await admin.get("/graph/v1.0/me/drive")).json()
    assert (tmp_path / "projects" / project["id"]).is_dir()
    assert (tmp_path / "home" / personal["id"]).is_dir()
    assert not (tmp_path / "home" / project["id"]).exists()
