"""A registry that trusts an external OpenID Connect issuer instead of its embedded IdP."""

from __future__ import annotations

import httpx2
import pytest

from tests.conftest import running_registry
from tests.oidc_issuer import running_issuer


@pytest.fixture
def issuer():
    with running_issuer() as running:
        yield running


@pytest.fixture
def external_registry(tmp_path, issuer):
    with running_registry(tmp_path / "data", None, issuers=[{"url": issuer.url}]) as registry:
        yield registry.url


async def test_tokens_of_the_external_issuer_are_accepted(external_registry, issuer):
    async with httpx2.AsyncClient(base_url=external_registry) as client:
        response = await client.get(
            "/graph/v1.0/me/drives", headers={"Authorization": f"Bearer {issuer.token()}"}
        )
        assert response.status_code == 200
        [drive] = response.json()["value"]
        assert drive["driveAlias"] == "personal/marie"
        assert (await client.get("/idp/.well-known/openid-configuration")).status_code == 404


async def test_admin_role_claim_makes_an_admin(external_registry, issuer):
    async with httpx2.AsyncClient(base_url=external_registry) as client:
        plain = issuer.token(sub="u-1", preferred_username="pierre")
        response = await client.post(
            "/graph/v1.0/drives", json={"name": "X"}, headers={"Authorization": f"Bearer {plain}"}
        )
        assert response.status_code == 403
        admin = issuer.token(sub="u-2", preferred_username="boss", roles=["spacereg-admin"])
        response = await client.post(
            "/graph/v1.0/drives", json={"name": "X"}, headers={"Authorization": f"Bearer {admin}"}
        )
        assert response.status_code == 201


async def test_an_unreachable_issuer_gives_503_not_500(external_registry, issuer):
    issuer.down = True
    async with httpx2.AsyncClient(base_url=external_registry) as client:
        response = await client.get(
            "/graph/v1.0/me/drives", headers={"Authorization": f"Bearer {issuer.token()}"}
        )
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "serviceNotAvailable"
