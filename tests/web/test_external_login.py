"""With an external issuer, the web UI logs in there as a confidential client: the code is
redeemed with the client's secret and PKCE, the user is the one its token names."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx2
import pytest

from tests.conftest import running_registry
from tests.oidc_issuer import TestIssuer, running_issuer


@pytest.fixture
def issuer() -> Iterator[TestIssuer]:
    with running_issuer() as running:
        yield running


@pytest.fixture
async def client(tmp_path: Path, issuer: TestIssuer) -> AsyncIterator[httpx2.AsyncClient]:
    with running_registry(
        tmp_path / "data",
        None,
        issuers=[{"url": issuer.url}],
        web_client_id=issuer.client_id,
        web_client_secret=issuer.client_secret,
    ) as registry:
        async with httpx2.AsyncClient(base_url=registry.url, timeout=10) as client:
            yield client


async def log_in(client: httpx2.AsyncClient, issuer: TestIssuer) -> httpx2.Response:
    started = await client.get("/login")
    assert started.headers["location"].startswith(f"{issuer.url}/authorize?")
    at_issuer = await client.get(started.headers["location"])
    assert at_issuer.status_code == 302
    return await client.get(at_issuer.headers["location"])


async def test_the_web_ui_logs_in_at_an_external_issuer(
    client: httpx2.AsyncClient, issuer: TestIssuer
) -> None:
    landed = await log_in(client, issuer)
    assert landed.status_code == 303, landed.text
    page = await client.get("/")
    assert "Marie Curie" in page.text and "<h1>Spaces</h1>" in page.text


async def test_a_wrong_client_secret_gets_no_session(
    client: httpx2.AsyncClient, issuer: TestIssuer
) -> None:
    issuer.client_secret = "another"
    refused = await log_in(client, issuer)
    assert refused.status_code == 401 and "refused the login" in refused.text
    assert (await client.get("/")).status_code == 303
