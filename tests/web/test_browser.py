"""The web UI in a real Chromium against a real registry: log in through the IdP's form, create
a project space, upload a file and download it back, folders, a member, logout; axe-core
checks every page on the way, at 360 px wide."""

from __future__ import annotations

import re

from playwright.async_api import BrowserContext, Page, expect

from tests.browser import assert_accessible
from tests.conftest import Registry
from tests.web.conftest import PASSWORDS


async def log_in(page: Page, url: str, username: str) -> None:
    """Open `url`, which sends the browser to the IdP's form; sign in there."""
    await page.goto(url)
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(PASSWORDS[username])
    await page.get_by_role("button", name="Sign in").click()


async def test_an_admin_works_with_a_project_space_in_the_browser(
    registry: Registry, browser_context: BrowserContext, tmp_path
) -> None:
    page = await browser_context.new_page()
    await log_in(page, registry.url, "admin")
    await expect(page.get_by_role("heading", name="Spaces", level=1)).to_be_visible()
    await assert_accessible(page)

    await page.get_by_label("Name").fill("Relativity")
    await page.get_by_role("button", name="Create project space").click()
    await expect(page.get_by_role("heading", name="Relativity", level=1)).to_be_visible()
    await assert_accessible(page)

    upload = tmp_path / "notes.txt"
    upload.write_bytes(b"E = mc^2\n")
    await page.get_by_label("File to upload").set_input_files(upload)
    await page.get_by_role("button", name="Upload", exact=True).click()
    await expect(page.get_by_role("link", name="notes.txt")).to_be_visible()
    async with page.expect_download() as downloading:
        await page.get_by_role("link", name="notes.txt").click()
    download = await downloading.value
    await download.save_as(tmp_path / "back.txt")
    assert (tmp_path / "back.txt").read_bytes() == b"E = mc^2\n"

    await page.get_by_label("New folder name").fill("Papers")
    await page.get_by_role("button", name="Create folder").click()
    await page.get_by_role("link", name="Papers/").click()
    await expect(page.get_by_text("This folder is empty.")).to_be_visible()
    breadcrumbs = page.get_by_role("navigation", name="Breadcrumb")
    await expect(breadcrumbs.get_by_role("link", name="Papers")).to_have_attribute(
        "aria-current", "page"
    )
    await breadcrumbs.get_by_role("link", name="Relativity").click()

    await page.get_by_label("New name for notes.txt").fill("1905.txt")
    await page.get_by_role("button", name="Rename notes.txt").click()
    await expect(page.get_by_role("link", name="1905.txt")).to_be_visible()
    await page.get_by_role("button", name="Delete Papers").click()
    await expect(page.get_by_role("link", name="Papers/")).to_have_count(0)

    await page.get_by_label("Share with").fill("einstein")
    await page.get_by_label("Role").select_option("viewer")
    await page.get_by_role("button", name="Share", exact=True).click()
    members = page.get_by_role("table", name=re.compile("Who holds a role"))
    await expect(members.get_by_role("row", name="Albert Einstein user viewer")).to_be_visible()
    await assert_accessible(page)

    await page.goto(f"{registry.url}/spaces/{'0' * 32}")
    await expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    await expect(page.get_by_text("request id")).to_have_count(2)
    await assert_accessible(page)

    await page.get_by_role("link", name="Back to your spaces").click()
    await page.get_by_role("button", name="Log out").click()
    await expect(page.get_by_role("heading", name="Logged out")).to_be_visible()
    await assert_accessible(page)
    await page.goto(registry.url)
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await assert_accessible(page)  # the IdP's form


async def test_a_state_changing_request_without_the_csrf_token_is_refused(
    registry: Registry, browser_context: BrowserContext
) -> None:
    page = await browser_context.new_page()
    await log_in(page, registry.url, "admin")
    await expect(page.get_by_role("heading", name="Spaces")).to_be_visible()

    # The browser's own cookie goes with it, as with a form another site made it submit.
    forged = await page.request.post(f"{registry.url}/spaces", form={"name": "Forged"})

    assert forged.status == 403
    assert "security token" in await forged.text()
    await page.reload()
    await expect(page.get_by_role("link", name="Forged")).to_have_count(0)


async def test_the_share_field_tells_what_discovery_finds(
    registry: Registry, browser_context: BrowserContext
) -> None:
    page = await browser_context.new_page()
    await log_in(page, registry.url, "admin")
    await page.get_by_role("link", name="Administrator").click()
    await page.get_by_label("Share with").fill("marie@nowhere.invalid")
    await expect(page.locator("#recipient-found")).to_contain_text("Not found")


async def test_the_accessibility_check_finds_what_it_should(
    browser_context: BrowserContext,
) -> None:
    page = await browser_context.new_page()
    await page.set_content('<html lang="en"><title>t</title><main><input></main></html>')
    try:
        await assert_accessible(page)
    except AssertionError as found:
        assert "label" in str(found)
    else:
        raise AssertionError("an input without a label passed axe-core")
