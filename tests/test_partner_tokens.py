"""Tokens of a partner's issuer (`registry/auth/partners.py`) against a real issuer on
loopback: trusted only while the partner vouches for the issuer (read at every call), only
for the partner's own users, only when made for us; and the validator's per-call issuers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx2
import pytest

from federation.oidc import TokenError, TokenValidator, TrustedIssuer, UntrustedIssuer
from registry.auth.partners import PartnerTokens
from tests.oidc_issuer import TestIssuer, running_issuer


@pytest.fixture
def issuer() -> Iterator[TestIssuer]:
    with running_issuer() as running:
        yield running


@pytest.fixture
async def validator() -> AsyncIterator[TokenValidator]:
    async with httpx2.AsyncClient() as http:
        yield TokenValidator([], http)


class Vouched:
    """The partners' issuers as the database would say at each call."""

    def __init__(self, issuers: dict[str, tuple[str, ...]]) -> None:
        self.issuers = issuers

    async def __call__(self) -> dict[str, tuple[str, ...]]:
        return dict(self.issuers)


async def test_a_remembered_token_counts_only_while_its_issuer_is_trusted(
    validator: TokenValidator, issuer: TestIssuer
) -> None:
    token = issuer.token()
    trusted = {issuer.url: TrustedIssuer(issuer.url, "spacereg")}
    assert (await validator.validate(token, trusted)).subject == "u-123"
    with pytest.raises(UntrustedIssuer):
        await validator.validate(token, {})
    with pytest.raises(UntrustedIssuer):
        await validator.validate(token)  # the list given at construction: empty


async def test_a_partner_s_user_is_named_by_the_partner_s_domain(
    validator: TokenValidator, issuer: TestIssuer
) -> None:
    partners = PartnerTokens(validator, Vouched({issuer.url: ("paris.test",)}), "zurich.test")

    marie = await partners.principal(issuer.token(aud="zurich.test"))

    assert (marie.remote, marie.username, marie.user_id, marie.is_admin) == (
        "marie@paris.test",
        "marie@paris.test",
        "",
        False,
    )
    spelled = issuer.token(aud="zurich.test", preferred_username="marie@PARIS.test")
    assert (await partners.principal(spelled)).remote == "marie@paris.test"


@pytest.mark.parametrize(
    "claims",
    [
        {"preferred_username": "einstein@zurich.test"},
        {"preferred_username": "x@rome.test"},
        {"preferred_username": "bad/name"},
        {"aud": "spacereg"},  # made for paris's own API
        {"groups": ["admins"], "roles": ["admin"], "aud": "rome.test"},
    ],
)
async def test_what_a_partner_s_issuer_cannot_say_is_refused(
    validator: TokenValidator, issuer: TestIssuer, claims: dict[str, object]
) -> None:
    partners = PartnerTokens(validator, Vouched({issuer.url: ("paris.test",)}), "zurich.test")
    with pytest.raises(TokenError):
        await partners.principal(issuer.token(**{"aud": "zurich.test", **claims}))


async def test_a_partner_no_longer_vouching_is_refused_at_once(
    validator: TokenValidator, issuer: TestIssuer
) -> None:
    vouched = Vouched({issuer.url: ("paris.test",)})
    partners = PartnerTokens(validator, vouched, "zurich.test")
    token = issuer.token(aud="zurich.test")
    await partners.principal(token)

    vouched.issuers = {}  # revoked, on any replica

    with pytest.raises(UntrustedIssuer):
        await partners.principal(token)


async def test_an_id_token_must_carry_the_login_s_nonce_and_come_from_its_issuer(
    validator: TokenValidator, issuer: TestIssuer
) -> None:
    partners = PartnerTokens(validator, Vouched({issuer.url: ("paris.test",)}), "zurich.test")
    token = issuer.token(aud="zurich.test", nonce="n-1")
    assert (await partners.principal(token, "n-1", issuer.url)).remote == "marie@paris.test"
    with pytest.raises(TokenError, match="nonce"):
        await partners.principal(token, "n-2", issuer.url)
    with pytest.raises(UntrustedIssuer):
        await partners.principal(token, "n-1", "https://other.example/idp")


async def test_an_issuer_partners_share_speaks_for_each_only_by_name(
    validator: TokenValidator, issuer: TestIssuer
) -> None:
    shared = Vouched({issuer.url: ("lyon.test", "paris.test")})
    partners = PartnerTokens(validator, shared, "zurich.test")

    named = issuer.token(aud="zurich.test", preferred_username="marie@paris.test")
    assert (await partners.principal(named)).remote == "marie@paris.test"
    with pytest.raises(TokenError, match="several partners"):
        await partners.principal(issuer.token(aud="zurich.test"))
    with pytest.raises(TokenError, match="another domain"):
        await partners.principal(issuer.token(aud="zurich.test", preferred_username="x@rome.test"))
