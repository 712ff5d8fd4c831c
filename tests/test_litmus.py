"""litmus, the WebDAV conformance suite, against a real registry on loopback: `basic`,
`copymove`, `props`, `locks` and `http` pass with no failure and no locking test skipped.
litmus authenticates with HTTP Basic: einstein's app password."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.conftest import Registry

LITMUS = shutil.which("litmus")
SUITES = ("basic", "copymove", "props", "locks", "http")
# WsgiDAV, like Apache, ignores a fragment in the request's URL (RFC 3986 says clients never
# send one): litmus warns, it does not fail.
FRAGMENT_WARNING = (
    "WARNING: DELETE removed collection resource with Request-URI including fragment; unsafe"
)
pytestmark = pytest.mark.skipif(LITMUS is None, reason="Debian's litmus is not installed")


def litmus_command(url: str, *credentials: str) -> list[str]:
    return [str(LITMUS), "--keep-going", url, *credentials]


async def test_litmus_passes_every_suite_with_locking(registry: Registry, tmp_path):
    async with registry.client("einstein") as einstein:
        space = (await einstein.get("/graph/v1.0/me/drive")).json()
        made = await einstein.post("/api/v1/me/app-passwords", json={"label": "litmus"})
    url = f"{registry.url}/dav/spaces/{space['id']}/"
    ran = subprocess.run(  # noqa: ASYNC221 (the test waits for litmus and nothing else)
        litmus_command(url, "einstein", made.json()["password"]),
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
