"""Playwright driving Debian's Chromium (installed by tests/run.sh; Playwright downloads no
browser of its own): one browser for the whole test session, a fresh context (cookies) per
test at 360 px wide, a screenshot of each open page when a test fails, and axe-core's check.

Registries on `*.test` names are reached through `--host-resolver-rules` (Chromium does not
ask the tests' DNS server); their certificates come from the tests' own CA, which the context
accepts with `ignore_https_errors` rather than installing the CA into an NSS profile: what
these tests check is the pages, while TLS between the registries stays verified against the CA.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Generator
from pathlib import Path

import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, BrowserContext, Page, ViewportSize, async_playwright

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP *.test 127.0.0.1",
]
NARROW = ViewportSize(width=360, height=740)  # the narrowest phone the pages are made for
SCREENSHOTS = Path(os.environ.get("SPACEREG_SCREENSHOTS", "var/screenshots"))
BLOCKING = ("serious", "critical")


@pytest.fixture(scope="session")
async def chromium() -> AsyncIterator[Browser]:
    if not _installed():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: tests/run.sh installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        await browser.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the test, for `browser_context` to see a failure."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
async def browser_context(
    chromium: Browser, request: pytest.FixtureRequest
) -> AsyncIterator[BrowserContext]:
    context = await chromium.new_context(viewport=NARROW, ignore_https_errors=True)
    context.set_default_timeout(15_000)
    yield context
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        for number, page in enumerate(context.pages):
            path = _screenshot_path(request.node.name, number)
            await page.screenshot(path=str(path), full_page=True)
            print(f"screenshot of the failed test's page: {path}")
    await context.close()


def _installed() -> bool:
    return Path(CHROMIUM).exists()


def _screenshot_path(test: str, number: int) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', test)}-{number}.png"


async def assert_accessible(page: Page) -> None:
    """axe-core finds no serious or critical violation on the page, and it needs no sideways
    scrolling at the context's width."""
    results = await Axe().run(page)
    blocking = [v for v in results.response["violations"] if v["impact"] in BLOCKING]
    assert not blocking, [
        (v["id"], v["impact"], [node["target"] for node in v["nodes"]]) for v in blocking
    ]
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{page.url} scrolls sideways by {overflow} px"
