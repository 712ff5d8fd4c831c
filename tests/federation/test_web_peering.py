"""Two peered registries' admins in a real Chromium: zurich's creates an invitation on the
Peers page, paris's accepts it there, both see the other; zurich then suspends, resumes and
revokes.
On the way, the "Share with" field tells that marie@paris.test is at a partner.
The registries are test_peering's pair: TLS from the tests' CA, `*.test` names from the test
DNS server (Chromium reaches them through tests/browser.py's resolver rule)."""

from __future__ import annotations

from playwright.async_api import BrowserContext, Page, expect

from tests.browser import assert_accessible
from tests.federation.peer_pair import Pair, Site, pair  # noqa: F401 (the fixture)
from tests.web.test_browser import log_in


async def peers_page(context: BrowserContext, site: Site) -> Page:
    page = await context.new_page()
    await log_in(page, f"{site.base_url}/peers", "admin")
    await expect(page.get_by_role("heading", name="Peers", level=1)).to_be_visible()
    return page


async def test_admins_peer_two_registries_on_their_peers_pages(
    pair: Pair,  # noqa: F811
    browser_context: BrowserContext,
) -> None:
    zurich = await peers_page(browser_context, pair.zurich)
    await expect(zurich.get_by_text("No partner registries yet.")).to_be_visible()
    await zurich.get_by_role("button", name="Create invitation").click()
    issued = zurich.get_by_label("Invitation for the partner's administrator")
    invitation = await issued.input_value()
    assert len(invitation) > 20
    await assert_accessible(zurich)

    paris = await peers_page(browser_context, pair.paris)
    await paris.get_by_label("Invitation", exact=True).fill(invitation)
    await paris.get_by_role("button", name="Accept invitation").click()
    await expect(paris.get_by_role("status")).to_contain_text("Peered with zurich.test")
    await expect(paris.get_by_role("row", name="zurich.test active")).to_be_visible()

    await zurich.goto(f"{pair.zurich.base_url}/peers")
    await expect(zurich.get_by_role("row", name="paris.test active")).to_be_visible()
    await assert_accessible(zurich)

    await zurich.get_by_role("link", name="Spaces").click()
    await zurich.get_by_role("link", name="Administrator").click()
    await zurich.get_by_label("Share with").fill("marie@paris.test")
    found = zurich.locator("#recipient-found")
    await expect(found).to_contain_text(f"Found at {pair.paris.base_url} (paris.test), a partner")
    await zurich.goto(f"{pair.zurich.base_url}/peers")
    await zurich.get_by_role("button", name="Suspend paris.test").click()
    await expect(zurich.get_by_role("row", name="paris.test suspended")).to_be_visible()
    await zurich.get_by_role("button", name="Resume paris.test").click()
    await expect(zurich.get_by_role("row", name="paris.test active")).to_be_visible()
    await zurich.get_by_role("button", name="Revoke paris.test").click()
    await expect(zurich.get_by_role("row", name="paris.test revoked")).to_be_visible()
