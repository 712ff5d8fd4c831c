"""A cross-domain share in a real Chromium, as the people it is made for meet it: Einstein
shares a folder from zurich with marie@paris.test on the folder's "Share with" dialog (the
field's live feedback says paris is a partner); Marie, logged in at paris with her Shares
page open, sees it arrive without reloading (the page asks for itself again), accepts it,
finds it under Spaces with where it comes from, opens the folder and reads the file through
paris's gateway; a whole space, shared from the space's page, she declines. Einstein's
Shares page shows both states.
The registries are a peered pair of tests/federation/peer_pair.py, over TLS on `*.test`."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import BrowserContext, Page, expect

from tests.browser import assert_accessible
from tests.federation.peer_pair import Pair, Site, pair, peered  # noqa: F401 (the fixture)
from tests.federation.test_shares import project_with_folder
from tests.web.test_browser import log_in


async def logged_in(context: BrowserContext, site: Site, path: str, username: str) -> Page:
    page = await context.new_page()
    await log_in(page, site.base_url + path, username)
    return page


async def test_marie_receives_accepts_opens_and_declines_shares_in_the_browser(
    pair: Pair,  # noqa: F811
    browser_context: BrowserContext,
    tmp_path: Path,
) -> None:
    await peered(pair)
    drive = await project_with_folder(pair, "Optics", leaf="lenses")

    marie = await logged_in(browser_context, pair.paris, "/shares", "marie")
    await expect(marie.get_by_role("heading", name="Shares", level=1)).to_be_visible()
    await expect(marie.get_by_text("No shares are waiting for you.")).to_be_visible()
    await assert_accessible(marie)

    einstein = await logged_in(
        browser_context, pair.zurich, f"/spaces/{drive}?path=/a/rel", "einstein"
    )
    await einstein.get_by_role("link", name="Share lenses").click()
    await expect(einstein.get_by_role("heading", name="Share /a/rel/lenses")).to_be_visible()
    await einstein.get_by_label("Share with").fill("marie@paris.test")
    found = einstein.locator("#recipient-found")
    await expect(found).to_contain_text("(paris.test), a partner")
    await assert_accessible(einstein)
    await einstein.get_by_label("Role").select_option("viewer")
    await einstein.get_by_role("button", name="Share").click()
    await expect(einstein.get_by_role("heading", name="Optics", level=1)).to_be_visible()

    # No reload: the open page shows the share once paris has it.
    waiting = marie.get_by_role("region", name="Waiting for you")
    await expect(
        waiting.get_by_text("shares this folder with you from zurich.test")
    ).to_be_visible()
    await expect(waiting).to_contain_text("einstein@zurich.test")
    await assert_accessible(marie)
    await marie.get_by_role("button", name="Accept lenses").click()
    accepted = marie.get_by_role("region", name="Accepted")
    await expect(accepted.get_by_role("link", name="lenses")).to_be_visible()
    await expect(marie.get_by_role("button", name="Remove lenses")).to_be_visible()

    await marie.get_by_role("navigation", name="Main").get_by_role("link", name="Spaces").click()
    card = marie.get_by_role("listitem").filter(has_text="einstein@zurich.test")
    await expect(card).to_contain_text("reachable")
    await assert_accessible(marie)
    await card.get_by_role("link", name="lenses").click()
    await expect(marie.get_by_role("heading", name="lenses", level=1)).to_be_visible()
    async with marie.expect_download() as downloading:
        await marie.get_by_role("link", name="hello.txt").click()
    download = await downloading.value
    await download.save_as(tmp_path / "hello.txt")
    assert (tmp_path / "hello.txt").read_bytes() == b"E = mc^2"
    assert "Upload" not in await marie.content()  # a viewer: no writing controls

    # A whole space, from the space's own "Share with" (local users and groups share there too).
    others = await project_with_folder(pair, "Thermo", leaf="heat")
    await einstein.goto(f"{pair.zurich.base_url}/spaces/{others}")
    await einstein.get_by_label("Share with").fill("marie@paris.test")
    await einstein.get_by_role("button", name="Share").click()
    await expect(einstein.get_by_role("row", name="marie@paris.test remote editor")).to_be_visible()
    await marie.get_by_role("navigation", name="Main").get_by_role("link", name="Shares").click()
    await marie.get_by_role("button", name="Decline Thermo").click()
    await expect(marie.get_by_text("No shares are waiting for you.")).to_be_visible()

    await einstein.get_by_role("navigation", name="Main").get_by_role("link", name="Shares").click()
    sent = einstein.get_by_role("table")
    await expect(
        sent.get_by_role("row", name="/a/rel/lenses marie@paris.test viewer accepted")
    ).to_be_visible()
    await expect(
        sent.get_by_role("row", name="the whole space marie@paris.test editor declined")
    ).to_be_visible()
    await assert_accessible(einstein)
