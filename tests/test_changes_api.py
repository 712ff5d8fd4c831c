"""The change feed: pages after a cursor, and the same as Server-Sent Events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.clock import FakeClock
from tests.conftest import Registry, running_registry
from tests.sse import events
from tests.test_drives_api import assert_error, create_project
from tests.test_permissions_api import VIEWER, invite, root
from tests.waiting import eventually


async def cursor_now(client) -> str:
    response = await client.get("/api/v1/changes")
    assert response.status_code == 200
    assert response.json()["value"] == []
    return response.json()["cursor"]


async def rename(client, space_id: str, name: str) -> None:
    response = await client.patch(f"/graph/v1.0/drives/{space_id}", json={"name": name})
    assert response.status_code == 200, response.text


async def test_client_catches_up_from_its_cursor_after_being_offline(admin, einstein):
    cursor = await cursor_now(einstein)

    # Einstein's client is offline while these happen.
    project = await create_project(admin, "Relativity")
    await invite(admin, project["id"], "einstein", VIEWER)
    await rename(admin, project["id"], "General relativity")
    hidden = await create_project(admin, "Not for Einstein")
    await rename(admin, hidden["id"], "Still not")

    page = (await einstein.get("/api/v1/changes", params={"since": cursor})).json()
    seen = [(c["type"], c["driveId"]) for c in page["value"]]
    # A space the caller holds a role in now shows its whole kept history.
    assert seen == [
        ("created", project["id"]),
        ("member_added", project["id"]),
        ("renamed", project["id"]),
    ]
    assert page["value"][2]["data"] == {"name": "General relativity"}
    assert page["hasMore"] is False
    assert int(page["cursor"]) > int(cursor)

    again = (await einstein.get("/api/v1/changes", params={"since": page["cursor"]})).json()
    assert again["value"] == [] and again["cursor"] == page["cursor"]


async def test_pages_are_limited_and_continue_where_they_stopped(admin, einstein):
    cursor = await cursor_now(einstein)
    project = await create_project(admin, "Paged")
    await invite(admin, project["id"], "einstein", VIEWER)
    for n in range(3):
        await rename(admin, project["id"], f"Paged {n}")

    first = (await einstein.get("/api/v1/changes", params={"since": cursor, "limit": 2})).json()
    assert [c["type"] for c in first["value"]] == ["created", "member_added"]
    assert first["hasMore"] is True
    second = (
        await einstein.get("/api/v1/changes", params={"since": first["cursor"], "limit": 2})
    ).json()
    assert [c["data"]["name"] for c in second["value"]] == ["Paged 0", "Paged 1"]
    assert second["hasMore"] is True
    third = (
        await einstein.get("/api/v1/changes", params={"since": second["cursor"], "limit": 2})
    ).json()
    assert [c["data"]["name"] for c in third["value"]] == ["Paged 2"]
    assert third["hasMore"] is False


async def test_caller_hears_of_the_space_they_lost_and_nothing_after(admin, einstein):
    project = await create_project(admin, "Short stay")
    permission = (await invite(admin, project["id"], "einstein", VIEWER)).json()["value"][0]
    cursor = await cursor_now(einstein)

    removed = await admin.delete(f"{root(project['id'])}/permissions/{permission['id']}")
    assert removed.status_code == 204
    await rename(admin, project["id"], "After Einstein left")

    page = (await einstein.get("/api/v1/changes", params={"since": cursor})).json()
    assert [(c["type"], c["driveId"]) for c in page["value"]] == [("member_removed", project["id"])]


async def test_members_hear_of_a_purged_space(admin, einstein):
    project = await create_project(admin, "Doomed")
    await invite(admin, project["id"], "einstein", VIEWER)
    cursor = await cursor_now(einstein)

    assert (await admin.delete(f"/graph/v1.0/drives/{project['id']}")).status_code == 204
    purged = await admin.delete(f"/graph/v1.0/drives/{project['id']}", headers={"Purge": "T"})
    assert purged.status_code == 204

    page = (await einstein.get("/api/v1/changes", params={"since": cursor})).json()
    # Once purged, only the deletion is shown to those who lost the space with it.
    assert [c["type"] for c in page["value"]] == ["deleted"]


async def test_cursor_older_than_the_kept_log_is_gone(registry: Registry, admin, einstein):
    cursor = await cursor_now(einstein)
    project = await create_project(admin, "Old news")
    await rename(admin, project["id"], "Older news")
    await registry.app.state.services.retention.sweep(datetime.now(UTC) + timedelta(days=60))

    response = await einstein.get("/api/v1/changes", params={"since": cursor})
    assert_error(response, 410, "cursorExpired")
    assert "list your drives again" in response.json()["error"]["message"]
    fresh = await cursor_now(einstein)
    assert (await einstein.get("/api/v1/changes", params={"since": fresh})).status_code == 200


async def test_bad_cursors_and_limits_are_refused(einstein):
    cursor = int(await cursor_now(einstein))
    ahead = await einstein.get("/api/v1/changes", params={"since": str(cursor + 1000)})
    assert_error(ahead, 410, "cursorExpired")
    for bad in ("abc", "-1", "1.5", "9" * 40):
        response = await einstein.get("/api/v1/changes", params={"since": bad})
        assert_error(response, 400, "invalidCursor")
    for bad in ("0", "1001", "x"):
        response = await einstein.get("/api/v1/changes", params={"since": "0", "limit": bad})
        assert_error(response, 400, "invalidRequest")


async def test_feed_and_stream_need_a_token(registry):
    async with registry.client() as anonymous:
        assert_error(await anonymous.get("/api/v1/changes"), 401, "unauthenticated")
        assert_error(await anonymous.get("/api/v1/events"), 401, "unauthenticated")


async def test_stream_delivers_a_change_as_it_happens(registry, admin):
    project = await create_project(admin, "Live")
    async with events(registry.url, registry.token("admin")) as stream:
        await rename(admin, project["id"], "Live now")
        event = await stream.next()
    assert event.type == "renamed"
    assert event.data["driveId"] == project["id"]
    assert event.data["data"] == {"name": "Live now"}
    assert event.id == event.data["id"]


async def test_stream_resumes_from_last_event_id(registry, admin):
    project = await create_project(admin, "Resume")
    async with events(registry.url, registry.token("admin")) as stream:
        await rename(admin, project["id"], "Resume 1")
        first = await stream.next()

    for n in (2, 3):  # while the client is away
        await rename(admin, project["id"], f"Resume {n}")

    async with events(registry.url, registry.token("admin"), last_event_id=first.id) as stream:
        missed = [await stream.next(), await stream.next()]
        await rename(admin, project["id"], "Resume 4")
        live = await stream.next()
    assert [e.data["data"]["name"] for e in [*missed, live]] == ["Resume 2", "Resume 3", "Resume 4"]
    assert int(first.id) < int(missed[0].id) < int(missed[1].id) < int(live.id)


async def test_stream_follows_access_granted_and_lost(registry, admin):
    project = await create_project(admin, "Comings and goings")
    async with events(registry.url, registry.token("einstein")) as stream:
        permission = (await invite(admin, project["id"], "einstein", VIEWER)).json()["value"][0]
        assert (await stream.next()).type == "member_added"
        await rename(admin, project["id"], "Seen by Einstein")
        assert (await stream.next()).data["data"] == {"name": "Seen by Einstein"}
        await admin.delete(f"{root(project['id'])}/permissions/{permission['id']}")
        assert (await stream.next()).type == "member_removed"
        await rename(admin, project["id"], "Not seen by Einstein")
        marker = await create_project(admin, "Marker")
        await invite(admin, marker["id"], "einstein", VIEWER)
        after = await stream.next()
    assert (after.type, after.data["driveId"]) == ("member_added", marker["id"])


async def next_after_the_role_ended(admin, stream, space_id: str) -> dict:
    """Change the space whose role ended, then grant a role on a new one: the stream's next
    event must be that grant (the change went unseen). Returns the new space."""
    await rename(admin, space_id, "After half past")
    marker = await create_project(admin, "Marker")
    await invite(admin, marker["id"], "einstein", VIEWER)
    after = await stream.next()
    assert (after.type, after.data["driveId"]) == ("member_added", marker["id"])
    return marker


async def test_a_role_that_expires_leaves_the_stream_and_the_feed(tmp_path, idp_key_dir):
    clock = FakeClock(datetime(2030, 1, 1, 12, 0, tzinfo=UTC))
    with running_registry(tmp_path / "data", idp_key_dir, clock=clock) as registry:
        async with registry.client("admin") as admin, registry.client("einstein") as einstein:
            project = await create_project(admin, "Until half past")
            until = "2030-01-01T12:30:00Z"
            await invite(admin, project["id"], "einstein", VIEWER, expirationDateTime=until)
            cursor = await cursor_now(einstein)
            async with events(registry.url, registry.token("einstein")) as stream:
                await rename(admin, project["id"], "Before half past")
                assert (await stream.next()).data["data"] == {"name": "Before half past"}
                clock.advance(timedelta(minutes=30))
                marker = await next_after_the_role_ended(admin, stream, project["id"])
            page = (await einstein.get("/api/v1/changes", params={"since": cursor})).json()
    assert {c["driveId"] for c in page["value"]} == {marker["id"]}


async def test_a_role_granted_with_an_expiry_to_a_connected_client_ends_on_its_stream(
    tmp_path, idp_key_dir
):
    """The client listens before it is invited until half past: after that, the stream stops
    naming the space, as the feed does."""
    clock = FakeClock(datetime(2030, 1, 1, 12, 0, tzinfo=UTC))
    with running_registry(tmp_path / "data", idp_key_dir, clock=clock) as registry:
        async with registry.client("admin") as admin:
            project = await create_project(admin, "Until half past")
            async with events(registry.url, registry.token("einstein")) as stream:
                until = "2030-01-01T12:30:00Z"
                await invite(admin, project["id"], "einstein", VIEWER, expirationDateTime=until)
                assert (await stream.next()).type == "member_added"
                clock.advance(timedelta(minutes=30))
                await next_after_the_role_ended(admin, stream, project["id"])


async def test_an_expiry_set_on_a_connected_clients_role_ends_it_on_the_stream(
    tmp_path, idp_key_dir
):
    clock = FakeClock(datetime(2030, 1, 1, 12, 0, tzinfo=UTC))
    with running_registry(tmp_path / "data", idp_key_dir, clock=clock) as registry:
        async with registry.client("admin") as admin:
            project = await create_project(admin, "Open ended")
            granted = (await invite(admin, project["id"], "einstein", VIEWER)).json()["value"][0]
            async with events(registry.url, registry.token("einstein")) as stream:
                changed = await admin.patch(
                    f"{root(project['id'])}/permissions/{granted['id']}",
                    json={"expirationDateTime": "2030-01-01T12:30:00Z"},
                )
                assert changed.status_code == 200, changed.text
                assert (await stream.next()).type == "member_changed"
                clock.advance(timedelta(minutes=30))
                await next_after_the_role_ended(admin, stream, project["id"])


async def test_idle_stream_gets_keepalives_and_a_gone_client_is_forgotten(tmp_path, idp_key_dir):
    with running_registry(tmp_path / "data", idp_key_dir, sse_keepalive_seconds=0.2) as registry:
        hub = registry.app.state.services.hub
        async with events(registry.url, registry.token("einstein")) as stream:
            assert await stream.next_comment() == "keep-alive"
            assert len(hub) == 1
        assert await eventually(lambda: len(hub) == 0)


async def test_metadata_announces_the_change_feed(registry):
    async with registry.client() as anonymous:
        endpoints = (await anonymous.get("/.well-known/space-registry")).json()["endpoints"]
    assert endpoints["changes"] == f"{registry.url}/api/v1/changes"
    assert endpoints["events"] == f"{registry.url}/api/v1/events"
