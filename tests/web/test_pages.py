"""The pages over a real registry, as a browser without JavaScript would use them (the script's
upload is its PUT with the CSRF header): spaces, files, members, share links, error pages."""

from __future__ import annotations

import re

import httpx2

from registry.spaces.availability import set_state
from registry.spaces.store import spaces
from tests.conftest import Registry
from tests.web.conftest import Browser


async def project(browser: Browser, name: str) -> tuple[str, str]:
    """A new project space (the browser is an admin): its page's path and the CSRF token."""
    token = await browser.csrf()
    created = await browser.client.post("/spaces", data={"name": name, "csrf": token})
    assert created.status_code == 303, created.text
    return created.headers["location"], token


async def test_the_spaces_page_shows_each_space_with_its_quota_and_last_change(
    browser: Browser,
) -> None:
    await browser.log_in("einstein")
    page = (await browser.client.get("/")).text
    assert "<h1>Spaces</h1>" in page and "Personal space" in page
    assert re.search(r'<meter min="0" max="\d+" value="0" aria-label="Quota used of', page)
    assert "Last change: <time" in page
    assert "New project space" not in page  # only admins create them
    token = await browser.csrf()
    refused = await browser.client.post("/spaces", data={"name": "Mine", "csrf": token})
    assert refused.status_code == 403
    assert "administrators" in refused.text


async def test_files_upload_download_folder_rename_delete(browser: Browser) -> None:
    await browser.log_in("admin")
    space, token = await project(browser, "Relativity")
    space_id = space.rsplit("/", 1)[1]
    files = f"/spaces/{space_id}/files"

    refused = await browser.client.put(f"{files}/notes.txt", content=b"E = mc^2")
    assert refused.status_code == 403  # the upload needs the CSRF header too
    uploaded = await browser.client.put(
        f"{files}/notes.txt", content=b"E = mc^2", headers={"X-CSRF-Token": token}
    )
    assert uploaded.status_code == 201
    assert (await browser.client.get(f"{files}/notes.txt")).content == b"E = mc^2"

    made = await browser.client.post(
        f"{space}/folders", data={"csrf": token, "path": "/", "name": "Papers"}
    )
    assert made.status_code == 303 and made.headers["location"] == space
    again = await browser.client.post(
        f"{space}/folders", data={"csrf": token, "path": "/", "name": "Papers"}
    )
    assert again.status_code == 409
    renamed = await browser.client.post(
        f"{space}/rename", data={"csrf": token, "path": "/notes.txt", "name": "1905.txt"}
    )
    assert renamed.status_code == 303
    moved = await browser.client.post(
        f"{space}/rename", data={"csrf": token, "path": "/1905.txt", "name": "../escape"}
    )
    assert moved.status_code == 400

    page = (await browser.client.get(space)).text
    assert ">Papers/</a>" in page and ">1905.txt</a>" in page and "notes.txt" not in page
    inner = (await browser.client.get(space, params={"path": "/Papers"})).text
    assert "This folder is empty." in inner
    assert 'aria-current="page">Papers</a>' in inner  # the breadcrumbs end at the folder

    deleted = await browser.client.post(f"{space}/delete", data={"csrf": token, "path": "/Papers"})
    assert deleted.status_code == 303
    assert ">Papers/</a>" not in (await browser.client.get(space)).text
    root = await browser.client.post(f"{space}/delete", data={"csrf": token, "path": "/"})
    assert root.status_code == 400


async def test_managers_add_a_local_user_or_group_with_a_role(
    browser: Browser, registry: Registry
) -> None:
    await browser.log_in("admin")
    space, token = await project(browser, "Members")

    added = await browser.client.post(
        f"{space}/members",
        data={"csrf": token, "recipient": "einstein", "kind": "user", "role": "viewer"},
    )
    assert added.status_code == 303
    group = await browser.client.post(
        f"{space}/members",
        data={"csrf": token, "recipient": "physics-lovers", "kind": "group", "role": "editor"},
    )
    assert group.status_code == 303
    page = (await browser.client.get(space)).text
    assert "<td>Albert Einstein</td><td>user</td><td>viewer</td>" in page
    assert "<td>physics-lovers</td><td>group</td><td>editor</td>" in page

    for data, status, message in (
        ({"recipient": "nobody", "role": "viewer"}, 400, "unknown user"),
        ({"recipient": "marie", "role": "owner"}, 400, "unknown role"),
        # a person at another registry goes through the shares wing, which wants a partner
        ({"recipient": "marie@paris.test", "role": "viewer"}, 403, "paris.test is not a peer"),
        ({"recipient": "marie", "role": "viewer", "path": "/a"}, 403, "other organisations"),
    ):
        refused = await browser.client.post(f"{space}/members", data={"csrf": token, **data})
        assert refused.status_code == status and message in refused.text, refused.text

    async with httpx2.AsyncClient(base_url=registry.url) as client:
        viewer = Browser(client)
        await viewer.log_in("einstein")
        page = (await client.get(space)).text
        # einstein is a viewer, and an editor through his group: he writes, he does not manage
        assert "Share with" not in page and "Create folder" in page
        refused = await client.post(
            f"{space}/members",
            data={"csrf": await viewer.csrf(), "recipient": "marie", "role": "viewer"},
        )
        assert refused.status_code == 403


async def test_a_space_one_may_not_see_is_a_not_found_page_with_the_request_id(
    browser: Browser,
) -> None:
    await browser.log_in("einstein")
    response = await browser.client.get("/spaces/" + "0" * 32)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "<h1>Not found</h1>" in response.text
    assert response.headers["x-request-id"] in response.text


async def test_the_share_link_opens_the_folder_after_login(
    browser: Browser, registry: Registry
) -> None:
    async with registry.client("admin") as admin:
        drive = (await admin.post("/graph/v1.0/drives", json={"name": "Linked"})).json()
    assert drive["webUrl"] == f"{registry.url}/s/{drive['id']}/"
    link = f"/s/{drive['id']}/Papers/2024"

    first = await browser.client.get(link)
    assert first.status_code == 303
    back = httpx2.URL(first.headers["location"]).params["next"]
    landed = await browser.log_in("admin", next_path=back)
    assert landed.headers["location"] == link
    opened = await browser.client.get(link)
    assert opened.headers["location"] == f"/spaces/{drive['id']}?path=%2FPapers%2F2024"


async def test_peers_are_for_administrators(browser: Browser, registry: Registry) -> None:
    await browser.log_in("einstein")
    page = await browser.client.get("/peers")
    assert page.status_code == 403 and "administrator" in page.text
    assert ">Peers</a>" not in (await browser.client.get("/")).text
    refused = await browser.client.post("/peers/invitations", data={"csrf": await browser.csrf()})
    assert refused.status_code == 403


async def test_an_admin_creates_an_invitation_to_copy(browser: Browser) -> None:
    await browser.log_in("admin")
    token = await browser.csrf()
    page = await browser.client.post("/peers/invitations", data={"csrf": token})
    assert page.status_code == 200
    assert re.search(
        r'<textarea id="invitation-issued" readonly rows="3">[^<]{20,}</textarea>', page.text
    )
    refused = await browser.client.post(
        "/peers/accepted", data={"csrf": token, "invitation": "not an invitation"}
    )
    assert refused.status_code == 400
    unknown = await browser.client.post("/peers/nowhere.test/suspend", data={"csrf": token})
    assert unknown.status_code == 404


async def test_lookup_tells_an_address_that_cannot_be_found(browser: Browser) -> None:
    await browser.log_in("einstein")
    response = await browser.client.get("/lookup", params={"address": "not an address"})
    assert response.status_code == 200
    assert response.json()["found"] is False and response.json()["problem"]


async def test_static_files_are_the_pages_own(browser: Browser) -> None:
    css = await browser.client.get("/static/app.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert (await browser.client.get("/static/app.js")).status_code == 200
    assert (await browser.client.get("/static/base.html")).status_code == 404


async def test_a_browser_at_an_address_nothing_serves_gets_a_page(registry: Registry) -> None:
    async with httpx2.AsyncClient(base_url=registry.url) as client:
        page = await client.get("/no/such/page", headers={"Accept": "text/html,*/*;q=0.8"})
        api = await client.get("/no/such/page")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "There is no page at this address." in page.text
    assert page.headers["x-request-id"] in page.text
    assert api.status_code == 404 and api.json()["error"]["code"] == "itemNotFound"


async def test_bad_input_gets_a_page_that_says_what_is_wrong(
    browser: Browser, registry: Registry
) -> None:
    await browser.log_in("admin")
    async with registry.client("admin") as admin:
        small = {"name": "Small", "quota": {"total": 10}}
        drive = (await admin.post("/graph/v1.0/drives", json=small)).json()
    space, files = f"/spaces/{drive['id']}", f"/spaces/{drive['id']}/files"
    token = await browser.csrf()

    too_big = await browser.client.put(
        f"{files}/big.bin", content=b"x" * 20, headers={"X-CSRF-Token": token}
    )
    assert too_big.status_code == 507 and "quota" in too_big.text
    for action, form in (
        ("rename", {"path": "", "name": "x"}),
        ("rename", {"path": "/missing", "name": "a/b"}),
        ("folders", {"path": "/", "name": ".."}),
        ("folders", {"path": "/", "name": "bad\x01name"}),
        ("delete", {"path": "/"}),
    ):
        refused = await browser.client.post(f"{space}/{action}", data={"csrf": token, **form})
        assert refused.status_code == 400, (action, form, refused.text)
        assert refused.headers["content-type"].startswith("text/html")
    missing = await browser.client.post(f"{space}/delete", data={"csrf": token, "path": "/missing"})
    assert missing.status_code == 404
    long_name = await browser.client.post("/spaces", data={"csrf": token, "name": "n" * 300})
    assert long_name.status_code == 400
    assert (await browser.client.get(space, params={"path": "/nowhere"})).status_code == 404


async def test_a_space_whose_storage_cannot_be_reached_says_so(
    browser: Browser, registry: Registry
) -> None:
    await browser.log_in("einstein")
    assert "cannot be reached" not in (await browser.client.get("/")).text
    async with registry.app.state.services.engine.begin() as conn:
        await set_state(conn, spaces.c.provider == "local", "unavailable")

    page = (await browser.client.get("/")).text

    assert "its storage cannot be reached now" in page
