"""Access-token validation against a real external issuer on loopback."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import httpx2
import pytest
from joserfc.jwk import RSAKey

from federation.oidc import IssuerUnavailable, TokenError, TokenValidator, TrustedIssuer
from tests.oidc_issuer import running_issuer


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def issuer():
    with running_issuer() as running:
        yield running


@pytest.fixture
async def http():
    async with httpx2.AsyncClient() as client:
        yield client


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def validator(issuer, http, clock):
    return TokenValidator([TrustedIssuer(issuer.url, "spacereg")], http, clock=clock)


def b64(value: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


async def test_valid_token_is_accepted(validator, issuer):
    claims = await validator.validate(issuer.token())
    assert claims.subject == "u-123"
    assert claims.groups() == ("physics-lovers",)
    assert claims.values["preferred_username"] == "marie"


async def test_verified_tokens_are_remembered_not_refetched(validator, issuer):
    token = issuer.token()
    await validator.validate(token)
    await validator.validate(token)
    await validator.validate(issuer.token())
    assert issuer.jwks_fetches == 1


async def test_expired_token_is_refused_beyond_the_leeway(validator, issuer, clock):
    assert await validator.validate(issuer.token(exp=int(clock.now) - 10))
    with pytest.raises(TokenError, match="expired"):
        await validator.validate(issuer.token(exp=int(clock.now) - 120))


async def test_cached_token_expires_too(validator, issuer, clock):
    token = issuer.token(exp=int(clock.now) + 60)
    await validator.validate(token)
    clock.now += 3600
    with pytest.raises(TokenError, match="expired"):
        await validator.validate(token)


async def test_token_not_yet_valid_is_refused(validator, issuer, clock):
    with pytest.raises(TokenError):
        await validator.validate(issuer.token(nbf=int(clock.now) + 600))


async def test_wrong_issuer_is_refused_before_any_fetch(validator, issuer):
    with pytest.raises(TokenError, match="issuer is not trusted"):
        await validator.validate(issuer.token(iss="https://evil.example"))
    with pytest.raises(TokenError, match="issuer is not trusted"):
        await validator.validate(issuer.token(iss=issuer.url + "/"))
    assert issuer.jwks_fetches == 0


async def test_wrong_audience_is_refused(validator, issuer):
    with pytest.raises(TokenError, match="aud"):
        await validator.validate(issuer.token(aud="someone-else"))


async def test_audience_list_containing_ours_is_accepted(validator, issuer):
    assert await validator.validate(issuer.token(aud=["other", "spacereg"]))


@pytest.mark.parametrize("claim", ["exp", "sub", "aud"])
async def test_missing_essential_claims_are_refused(validator, issuer, claim):
    with pytest.raises(TokenError):
        await validator.validate(issuer.token(**{claim: None}))


async def test_unknown_kid_refreshes_the_keys_once(validator, issuer):
    await validator.validate(issuer.token())
    new_key = issuer.rotate("k2", ec=True)
    assert await validator.validate(issuer.token(key=new_key))
    assert issuer.jwks_fetches == 2


async def test_unknown_kid_refresh_is_rate_limited(validator, issuer, clock):
    await validator.validate(issuer.token())
    stranger = RSAKey.generate_key(2048, private=True, parameters={"kid": "nobody"})
    for _ in range(5):
        with pytest.raises(TokenError, match="unknown"):
            await validator.validate(issuer.token(key=stranger))
    assert issuer.jwks_fetches == 2  # the first fetch, then one refresh for five unknown kids
    clock.now += 31
    with pytest.raises(TokenError, match="unknown"):
        await validator.validate(issuer.token(key=stranger))
    assert issuer.jwks_fetches == 3


async def test_bad_signature_is_refused(validator, issuer):
    impostor = RSAKey.generate_key(2048, private=True, parameters={"kid": "k1"})
    with pytest.raises(TokenError, match="signature"):
        await validator.validate(issuer.token(key=impostor))
    header, payload, signature = issuer.token().split(".")
    tampered = json.loads(base64.urlsafe_b64decode(payload + "=="))
    tampered["sub"] = "admin"
    with pytest.raises(TokenError, match="signature"):
        await validator.validate(f"{header}.{b64(tampered)}.{signature}")


async def test_alg_none_is_refused(validator, issuer):
    payload = {"iss": issuer.url, "aud": "spacereg", "sub": "x", "exp": int(time.time()) + 60}
    token = f"{b64({'alg': 'none', 'kid': 'k1'})}.{b64(payload)}."
    with pytest.raises(TokenError, match="algorithm"):
        await validator.validate(token)
    assert issuer.jwks_fetches == 0


async def test_hmac_signed_with_the_public_key_is_refused(validator, issuer):
    public_pem = issuer.keys[0].as_pem(private=False)
    payload = {"iss": issuer.url, "aud": "spacereg", "sub": "x", "exp": int(time.time()) + 60}
    signing_input = f"{b64({'alg': 'HS256', 'kid': 'k1'})}.{b64(payload)}"
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    with pytest.raises(TokenError, match="algorithm"):
        await validator.validate(token)


async def test_algorithm_not_matching_the_key_is_refused(validator, issuer):
    _, payload, signature = issuer.token().split(".")
    token = f"{b64({'alg': 'ES256', 'kid': 'k1'})}.{payload}.{signature}"
    with pytest.raises(TokenError):
        await validator.validate(token)


@pytest.mark.parametrize(
    "token",
    ["", "abc", "a.b", "a.b.c.d", "!!!.@@@.###", f"{b64({'alg': 'RS256'})}.bm90IGpzb24.sig"],
)
async def test_malformed_tokens_are_refused(validator, token):
    with pytest.raises(TokenError):
        await validator.validate(token)


async def test_oversized_token_is_refused(validator):
    with pytest.raises(TokenError, match="too large"):
        await validator.validate("a" * 20_000)


async def test_discovery_naming_another_issuer_is_refused(validator, issuer):
    issuer.discovery_issuer = "https://elsewhere.example"
    with pytest.raises(IssuerUnavailable, match="names issuer"):
        await validator.validate(issuer.token())


async def test_unreachable_issuer_is_reported(validator, issuer):
    issuer.down = True
    with pytest.raises(IssuerUnavailable):
        await validator.validate(issuer.token())


async def test_keys_stay_usable_while_the_issuer_is_down(validator, issuer, clock):
    await validator.validate(issuer.token())
    issuer.down = True
    clock.now += 7200  # keys are stale; the refresh fails; the known keys still verify
    assert await validator.validate(issuer.token(exp=int(clock.now) + 60, iat=int(clock.now)))


async def test_several_issuers_are_trusted_at_once(issuer, http, clock):
    with running_issuer() as second:
        validator = TokenValidator(
            [
                TrustedIssuer(issuer.url, "spacereg"),
                TrustedIssuer(second.url, "partner", groups_claim=None),
            ],
            http,
            clock=clock,
        )
        assert (await validator.validate(issuer.token())).issuer.url == issuer.url
        claims = await validator.validate(second.token(aud="partner"))
        assert claims.issuer.url == second.url
        assert claims.groups() == ()
        with pytest.raises(TokenError):
            await validator.validate(second.token(aud="spacereg"))
