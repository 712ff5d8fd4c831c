"""Members of a space: invite, list, change, remove; role definitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.clock import FakeClock
from tests.conftest import running_registry
from tests.test_drives_api import assert_error, create_project, user_id

MANAGER = "312c0871-5ef7-4b3a-85b6-0e4074c64049"
EDITOR = "58c63c02-1d89-4572-916a-870abc5a1b7d"
VIEWER = "a8d5fe5e-96e3-418d-825b-534dbdf22b99"


def root(space_id):
    return f"/graph/v1beta1/drives/{space_id}/root"


async def invite(client, space_id, object_id, role=EDITOR, kind="user", **extra):
    return await client.post(
        f"{root(space_id)}/invite",
        json={
            "recipients": [{"objectId": object_id, "@libre.graph.recipient.type": kind}],
            "roles": [role],
            **extra,
        },
    )


async def test_invited_user_sees_the_space_with_their_role(registry, admin):
    project = await create_project(admin, "Shared work")
    response = await invite(admin, project["id"], "einstein", EDITOR)
    assert response.status_code == 200, response.text
    [granted] = response.json()["value"]
    assert granted["roles"] == [EDITOR]
    assert granted["grantedToV2"]["user"]["displayName"] == "Albert Einstein"
    async with registry.client("einstein") as einstein:
        drives = (await einstein.get("/graph/v1.0/me/drives")).json()["value"]
        assert project["id"] in {d["id"] for d in drives}
        assert (await einstein.get(f"/graph/v1.0/drives/{project['id']}")).status_code == 200


async def test_invite_by_user_id(registry, admin):
    project = await create_project(admin, "By id")
    marie = await user_id(registry, "marie")
    response = await invite(admin, project["id"], marie, VIEWER)
    assert response.json()["value"][0]["grantedToV2"]["user"]["id"] == marie


async def test_group_members_see_the_space(registry, admin):
    project = await create_project(admin, "Physics")
    response = await invite(admin, project["id"], "physics-lovers", VIEWER, kind="group")
    assert response.status_code == 200
    assert response.json()["value"][0]["grantedToV2"]["group"]["id"] == "physics-lovers"
    for username, sees in (("einstein", True), ("marie", True), ("richard", False)):
        async with registry.client(username) as client:
            ids = {d["id"] for d in (await client.get("/graph/v1.0/me/drives")).json()["value"]}
            assert (project["id"] in ids) is sees, username


async def test_permissions_are_listed_for_members(registry, admin):
    project = await create_project(admin, "Listed")
    await invite(admin, project["id"], "marie", VIEWER)
    async with registry.client("marie") as marie:
        response = await marie.get(f"{root(project['id'])}/permissions")
    assert response.status_code == 200
    body = response.json()
    assert sorted(p["roles"][0] for p in body["value"]) == sorted([MANAGER, VIEWER])
    assert {r["id"] for r in body["@libre.graph.permissions.roles.allowedValues"]} == {
        MANAGER,
        EDITOR,
        VIEWER,
    }


async def test_role_change_and_removal(registry, admin):
    project = await create_project(admin, "Roles")
    permission = (await invite(admin, project["id"], "marie", VIEWER)).json()["value"][0]
    url = f"{root(project['id'])}/permissions/{permission['id']}"
    changed = await admin.patch(url, json={"roles": [EDITOR]})
    assert changed.status_code == 200
    assert changed.json()["roles"] == [EDITOR]
    assert (await admin.delete(url)).status_code == 204
    async with registry.client("marie") as marie:
        ids = {d["id"] for d in (await marie.get("/graph/v1.0/me/drives")).json()["value"]}
    assert project["id"] not in ids
    assert_error(await admin.delete(url), 404, "itemNotFound")


async def test_expired_membership_grants_nothing(tmp_path, idp_key_dir):
    clock = FakeClock(datetime(2030, 1, 1, 12, 0, tzinfo=UTC))
    with running_registry(tmp_path / "data", idp_key_dir, clock=clock) as registry:
        async with registry.client("admin") as admin:
            project = await create_project(admin, "Temporary")
            response = await invite(
                admin, project["id"], "marie", VIEWER, expirationDateTime="2030-01-01T13:00:00Z"
            )
            permission = response.json()["value"][0]
            assert permission["expirationDateTime"].startswith("2030-01-01T13:00:00")
            assert_error(
                await invite(
                    admin,
                    project["id"],
                    "richard",
                    VIEWER,
                    expirationDateTime="2030-01-01T11:59:59Z",
                ),
                400,
                "invalidRequest",
            )
        async with registry.client("marie") as marie:
            assert (await marie.get(f"/graph/v1.0/drives/{project['id']}")).status_code == 200
            # Listed now, and so answered again while nothing changes in the database...
            ids = {d["id"] for d in (await marie.get("/graph/v1.0/me/drives")).json()["value"]}
            assert project["id"] in ids
        clock.advance(timedelta(hours=1))  # ...but only until 13:00, when marie's role ends
        async with registry.client("marie") as marie:
            ids = {d["id"] for d in (await marie.get("/graph/v1.0/me/drives")).json()["value"]}
            assert project["id"] not in ids
            assert_error(
                await marie.get(f"/graph/v1.0/drives/{project['id']}"), 404, "itemNotFound"
            )


async def test_the_last_manager_cannot_leave(admin):
    project = await create_project(admin, "Managed")
    listing = (await admin.get(f"{root(project['id'])}/permissions")).json()["value"]
    [manager] = listing
    url = f"{root(project['id'])}/permissions/{manager['id']}"
    assert_error(await admin.delete(url), 409, "conflict")
    assert_error(await admin.patch(url, json={"roles": [VIEWER]}), 409, "conflict")
    await invite(admin, project["id"], "einstein", MANAGER)
    assert (await admin.delete(url)).status_code == 204


async def test_only_managers_manage_members(registry, admin):
    project = await create_project(admin, "Guarded")
    await invite(admin, project["id"], "marie", EDITOR)
    async with registry.client("marie") as marie:
        assert_error(await invite(marie, project["id"], "richard"), 403, "accessDenied")
    async with registry.client("richard") as richard:
        assert_error(await invite(richard, project["id"], "richard"), 404, "itemNotFound")
        assert_error(await richard.get(f"{root(project['id'])}/permissions"), 404, "itemNotFound")


async def test_inviting_twice_conflicts(admin):
    project = await create_project(admin, "Twice")
    assert (await invite(admin, project["id"], "marie")).status_code == 200
    assert_error(await invite(admin, project["id"], "marie"), 409, "nameAlreadyExists")


@pytest.mark.parametrize(
    "body",
    [
        {"recipients": [], "roles": [EDITOR]},
        {"recipients": [{"objectId": "marie"}], "roles": []},
        {"recipients": [{"objectId": "marie"}], "roles": ["not-a-role"]},
        {"recipients": [{"objectId": "marie"}], "roles": [EDITOR, VIEWER]},
        {"recipients": [{"objectId": "nobody-here"}], "roles": [EDITOR]},
        {"recipients": [{"objectId": ""}], "roles": [EDITOR]},
        {
            "recipients": [{"objectId": "marie", "@libre.graph.recipient.type": "robot"}],
            "roles": [EDITOR],
        },
        {"recipients": [{"id": "marie"}], "roles": [EDITOR]},
        {"recipients": "marie", "roles": [EDITOR]},
        {"recipients": [{"objectId": "marie"}], "roles": [EDITOR], "expirationDateTime": "soon"},
    ],
)
async def test_bad_invitations_are_refused_and_grant_nothing(admin, body):
    project = await create_project(admin, "Refusing")
    response = await admin.post(f"{root(project['id'])}/invite", json=body)
    assert_error(response, 400, "invalidRequest")
    listing = (await admin.get(f"{root(project['id'])}/permissions")).json()["value"]
    assert len(listing) == 1


async def test_a_failed_invitation_of_several_grants_none(admin):
    project = await create_project(admin, "All or nothing")
    await invite(admin, project["id"], "richard")
    response = await admin.post(
        f"{root(project['id'])}/invite",
        json={"recipients": [{"objectId": "marie"}, {"objectId": "richard"}], "roles": [EDITOR]},
    )
    assert_error(response, 409, "nameAlreadyExists")
    listing = (await admin.get(f"{root(project['id'])}/permissions")).json()["value"]
    assert len(listing) == 2


async def test_the_same_recipient_twice_in_one_invitation_conflicts(admin):
    project = await create_project(admin, "Twice at once")
    response = await admin.post(
        f"{root(project['id'])}/invite",
        json={"recipients": [{"objectId": "marie"}, {"objectId": "marie"}], "roles": [EDITOR]},
    )
    assert_error(response, 409, "nameAlreadyExists")
    listing = (await admin.get(f"{root(project['id'])}/permissions")).json()["value"]
    assert len(listing) == 1


async def test_patch_permission_failures(admin):
    project = await create_project(admin, "Patch perms")
    permission = (await invite(admin, project["id"], "marie")).json()["value"][0]
    url = f"{root(project['id'])}/permissions/{permission['id']}"
    assert_error(await admin.patch(url, json={}), 400, "invalidRequest")
    assert_error(await admin.patch(url, json={"roles": ["owner"]}), 400, "invalidRequest")
    missing = f"{root(project['id'])}/permissions/does-not-exist"
    assert_error(await admin.patch(missing, json={"roles": [VIEWER]}), 404, "itemNotFound")


async def test_role_definitions_carry_the_unified_ids(einstein):
    response = await einstein.get("/graph/v1beta1/roleManagement/permissions/roleDefinitions")
    assert response.status_code == 200
    by_id = {r["id"]: r for r in response.json()}
    assert set(by_id) == {MANAGER, EDITOR, VIEWER}
    assert by_id[MANAGER]["displayName"] == "Can manage"
    viewer_actions = set(by_id[VIEWER]["rolePermissions"][0]["allowedResourceActions"])
    manager_actions = set(by_id[MANAGER]["rolePermissions"][0]["allowedResourceActions"])
    assert viewer_actions < manager_actions
    one = await einstein.get(f"/graph/v1beta1/roleManagement/permissions/roleDefinitions/{EDITOR}")
    assert one.json() == by_id[EDITOR]
    missing = await einstein.get("/graph/v1beta1/roleManagement/permissions/roleDefinitions/x")
    assert_error(missing, 404, "itemNotFound")


READ_MEMBERS = "libre.graph/driveItem/permissions/read"


async def test_every_member_sees_the_members_as_the_role_definitions_say(registry, admin):
    """Who may list the members is what the published definitions grant: every role."""
    project = await create_project(admin, "Who is in")
    roles = {"marie": VIEWER, "einstein": EDITOR, "richard": MANAGER}
    for username, role in roles.items():
        await invite(admin, project["id"], username, role)
    definitions = (
        await admin.get("/graph/v1beta1/roleManagement/permissions/roleDefinitions")
    ).json()
    actions = {d["id"]: d["rolePermissions"][0]["allowedResourceActions"] for d in definitions}
    assert all(READ_MEMBERS in granted for granted in actions.values())
    for username, role in roles.items():
        async with registry.client(username) as client:
            listed = await client.get(f"{root(project['id'])}/permissions")
            drive = await client.get(f"/graph/v1beta1/drives/{project['id']}")
        assert READ_MEMBERS in actions[role]
        assert listed.status_code == 200, username
        assert len(listed.json()["value"]) == 4, username
        assert len(drive.json()["root"]["permissions"]) == 4, username


async def invite_error(client, space_id, username):
    response = await invite(client, space_id, username)
    return response.status_code, response.json()["error"]["code"]


@pytest.mark.parametrize(
    ("inviter", "role", "status"),
    [("richard", None, 404), ("marie", VIEWER, 403), ("einstein", EDITOR, 403)],
    ids=["not a member", "viewer", "editor"],
)
async def test_invite_tells_nothing_of_users_to_who_may_not_invite(
    registry, admin, inviter, role, status
):
    """Whether a username exists is told only to a space's managers: anyone else learns only
    that they may not invite, whichever name they try."""
    project = await create_project(admin, "Closed")
    if role is not None:
        await invite(admin, project["id"], inviter, role)
    async with registry.client(inviter) as client:
        known = await invite_error(client, project["id"], "admin")
        unknown = await invite_error(client, project["id"], "nobody-by-this-name")
        missing_space = await invite_error(client, "0" * 32, "nobody-by-this-name")
    assert known == unknown == (status, {404: "itemNotFound", 403: "accessDenied"}[status])
    assert missing_space == (404, "itemNotFound")


async def test_a_manager_is_told_of_an_unknown_user(admin):
    project = await create_project(admin, "Open")
    response = await invite(admin, project["id"], "nobody-by-this-name")
    assert_error(response, 400, "invalidRequest")
    assert "unknown user" in response.json()["error"]["message"]


async def test_roles_are_named_by_name_or_by_id_wherever_they_are_asked_for(admin, einstein):
    definitions = "/graph/v1beta1/roleManagement/permissions/roleDefinitions"
    for name, unified_id in (("viewer", VIEWER), ("editor", EDITOR), ("manager", MANAGER)):
        by_name = await einstein.get(f"{definitions}/{name}")
        assert by_name.status_code == 200, by_name.text
        assert by_name.json() == (await einstein.get(f"{definitions}/{unified_id}")).json()
    project = await create_project(admin, "Named roles")
    invited = await invite(admin, project["id"], "einstein", "editor")
    assert invited.json()["value"][0]["roles"] == [EDITOR]  # v1beta1 answers with the id
    listed = (await admin.get(f"/graph/v1.0/drives/{project['id']}")).json()
    assert sorted(p["roles"][0] for p in listed["root"]["permissions"]) == ["editor", "manager"]
