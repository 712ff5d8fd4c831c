"""The Shares page, the folder's "Share with" dialog and the Peers page's Resume over one real
registry, as a browser without JavaScript uses them: what shows with nothing shared, and the
refusals (a stale form, a share that is not the user's, a peer that is not suspended). The
way of a share between two registries is in tests/federation/test_web_shares.py."""

from __future__ import annotations

from tests.web.conftest import Browser
from tests.web.test_pages import project


async def test_the_shares_page_with_nothing_shared(browser: Browser) -> None:
    await browser.log_in("einstein")
    page = await browser.client.get("/shares")
    assert page.status_code == 200
    assert "<h1>Shares</h1>" in page.text
    assert "No shares are waiting for you." in page.text
    assert "You have accepted no shares." in page.text
    assert "You have shared nothing with other organisations." in page.text
    assert 'data-follow="/shares"' in page.text  # the script keeps the lists current


async def test_accepting_or_declining_a_share_that_is_not_yours_is_refused(
    browser: Browser,
) -> None:
    await browser.log_in("einstein")
    token = await browser.csrf("/shares")
    for action in ("accept", "decline"):
        stale = await browser.client.post(f"/shares/{'0' * 32}/{action}", data={"csrf": "x"})
        assert stale.status_code == 403 and "security token" in stale.text
        unknown = await browser.client.post(f"/shares/{'0' * 32}/{action}", data={"csrf": token})
        assert unknown.status_code == 404, unknown.text
        assert unknown.headers["content-type"].startswith("text/html")
        assert 'href="/shares"' in unknown.text  # the error page has the navigation


async def test_the_folder_share_dialog(browser: Browser) -> None:
    await browser.log_in("admin")
    space, token = await project(browser, "Dialog")
    made = await browser.client.post(
        f"{space}/folders", data={"csrf": token, "path": "/", "name": "Papers"}
    )
    assert made.status_code == 303
    listing = (await browser.client.get(space + "?path=/")).text
    assert f'href="{space}/share?path=/Papers"' in listing

    dialog = await browser.client.get(f"{space}/share", params={"path": "/Papers"})
    assert dialog.status_code == 200
    assert "<h1>Share /Papers</h1>" in dialog.text
    assert 'name="path" value="/Papers"' in dialog.text
    assert 'name="kind"' not in dialog.text  # a folder goes to people elsewhere only
    hidden = await browser.client.get(f"/spaces/{'0' * 32}/share", params={"path": "/a"})
    assert hidden.status_code == 404


async def test_resume_is_for_administrators_and_suspended_peers(
    browser: Browser, registry: object
) -> None:
    await browser.log_in("admin")
    token = await browser.csrf("/peers")
    unknown = await browser.client.post("/peers/nowhere.test/resume", data={"csrf": token})
    assert unknown.status_code == 404, unknown.text
    stale = await browser.client.post("/peers/nowhere.test/resume", data={"csrf": ""})
    assert stale.status_code == 403

    await browser.client.post("/logout", data={"csrf": token})
    await browser.log_in("einstein")
    refused = await browser.client.post(
        "/peers/nowhere.test/resume", data={"csrf": await browser.csrf()}
    )
    assert refused.status_code == 403 and "administrator" in refused.text
