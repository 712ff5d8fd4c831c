"""The admin peering API's refusals of bad input, on one registry (the peering itself, with a
partner registry over TLS, is in tests/federation/test_peering.py)."""

from __future__ import annotations

import httpx2
import pytest


@pytest.mark.parametrize("domain", ["", " ", "a..b", "-a.test", "paris.test:0", "[::1", "x" * 300])
async def test_a_domain_that_is_no_host_name_is_refused_before_discovery(
    admin: httpx2.AsyncClient, domain: str
) -> None:
    answer = await admin.post("/api/v1/peers", json={"domain": domain})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "invalidRequest"


@pytest.mark.parametrize("expires", ["", "0d", "91d", "13w", "1000h", "10000m", "7", "7 days"])
async def test_an_invitation_lifetime_outside_the_documented_range_is_refused(
    admin: httpx2.AsyncClient, expires: str
) -> None:
    answer = await admin.post("/api/v1/peers/invitations", json={"expires": expires})
    assert answer.status_code == 400, answer.text


@pytest.mark.parametrize("expires", ["1d", "90d", "12w", "999h", "9999m"])
async def test_an_invitation_lifetime_within_the_range_is_granted(
    admin: httpx2.AsyncClient, expires: str
) -> None:
    answer = await admin.post("/api/v1/peers/invitations", json={"expires": expires})
    assert answer.status_code == 201, answer.text
    assert answer.json()["invitation"]
