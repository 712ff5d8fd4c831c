"""litmus, the WebDAV conformance suite, against a real registry on loopback: `basic`,
`copymove`, `props`, `locks` and `http` pass with no failure and no locking test skipped.

litmus authenticates with HTTP Basic only. Until app passwords exist on this branch, it talks
to a loopback proxy written here (`storage.davproxy.DavProxy`, the registry's own WebDAV
proxy) that sends each request on with the user's bearer token; everything past the proxy is
the real registry. With app passwords, drop the proxy: point litmus at the registry and pass
`einstein <app-password>` as its last two arguments (`litmus_command`)."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx2
import pytest
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from storage.dav_paths import dav_mount
from storage.davproxy import DavProxy
from tests.conftest import Registry
from tests.servers import free_port, serve

LITMUS = shutil.which("litmus")
SUITES = ("basic", "copymove", "props", "locks", "http")
# WsgiDAV, like Apache, ignores a fragment in the request's URL (RFC 3986 says clients never
# send one): litmus warns, it does not fail.
FRAGMENT_WARNING = (
    "WARNING: DELETE removed collection resource with Request-URI including fragment; unsafe"
)
pytestmark = pytest.mark.skipif(LITMUS is None, reason="Debian's litmus is not installed")


@pytest.fixture
def bearer_proxy(registry: Registry) -> Iterator[str]:
    """A loopback WebDAV URL that forwards to the registry's `/dav/spaces` as einstein."""
    headers = {"Authorization": f"Bearer {registry.token('einstein')}"}
    proxies: list[DavProxy] = []

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
            proxies.append(DavProxy(http, f"{registry.url}/dav/spaces"))
            yield

    async def proxy(scope: Scope, receive: Receive, send: Send) -> None:
        await proxies[0](scope, receive, send)

    app = Starlette(routes=[dav_mount("/dav/spaces", proxy)], lifespan=lifespan)
    with serve(app, free_port()) as url:
        yield url


def litmus_command(url: str, *credentials: str) -> list[str]:
    return [str(LITMUS), "--keep-going", url, *credentials]


async def test_litmus_passes_every_suite_with_locking(registry: Registry, bearer_proxy, tmp_path):
    async with registry.client("einstein") as einstein:
        space = (await einstein.get("/graph/v1.0/me/drive")).json()
    url = f"{bearer_proxy}/dav/spaces/{space['id']}/"
    ran = subprocess.run(  # noqa: ASYNC221 (the test waits for litmus and nothing else)
        litmus_command(url),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={"TESTS": " ".join(SUITES), "HTDOCS": "/usr/share/litmus/htdocs", "PATH": "/usr/bin"},
    )
    report = ran.stdout + ran.stderr
    summaries = re.findall(r"<- summary for `(\w+)': of (\d+) tests run: (\d+) passed", report)
    assert {suite for suite, _, _ in summaries} == set(SUITES), report
    for suite, run, passed in summaries:
        assert run == passed, f"{suite}: {passed} of {run} passed\n{report}"
    assert "SKIPPED" not in report and "WARNING" not in report.replace(FRAGMENT_WARNING, ""), report
    assert ran.returncode == 0, report
