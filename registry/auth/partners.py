"""A partner's user, by a token of an issuer that partner vouches for: `marie@paris.test`
holding exactly what was shared with her here (her `remote` member rows), nothing else.

Which issuers count is read from the database at every call (active partners only), so a
revoke on any replica refuses the next request everywhere; only the issuers' keys are
cached. A partner's issuer speaks only for the partner's own domain, and only in tokens
made for us: their audience is our client id at the partner, our domain."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from federation.addresses import parse_address
from federation.errors import InvalidAddress
from federation.oidc import Claims, TokenError, TokenValidator, TrustedIssuer
from registry.access.principal import Principal

# issuer URL → the domains of the active partners that vouch for it.
VouchedIssuers = Callable[[], Awaitable[dict[str, tuple[str, ...]]]]


class PartnerTokens:
    def __init__(self, validator: TokenValidator, vouched: VouchedIssuers, audience: str) -> None:
        self._validator = validator
        self._vouched = vouched
        self.audience = audience

    async def principal(
        self, token: str, nonce: str | None = None, issuer: str | None = None
    ) -> Principal:
        """The partner's user the token names, or TokenError (UntrustedIssuer: no active
        partner vouches for its issuer). `nonce`: the token must carry it (an ID token);
        `issuer`: the token must be that issuer's (the one a login was sent to)."""
        vouched = await self._vouched()
        if issuer is not None:
            vouched = {url: domains for url, domains in vouched.items() if url == issuer}
        issuers = {url: TrustedIssuer(url, self.audience, groups_claim=None) for url in vouched}
        claims = await self._validator.validate(token, issuers)
        if nonce is not None and claims.values.get("nonce") != nonce:
            raise TokenError("the token was not made for this login (nonce)")
        address = federated_address(claims, vouched[claims.issuer.url])
        name = claims.values.get("name")
        return Principal("", address, _display(name, address), (), False, address)


def federated_address(claims: Claims, domains: tuple[str, ...]) -> str:
    """`user@domain` from the token's `preferred_username` (else `sub`), `domain` being that
    of the partner vouching for the issuer. A name that says its domain must say one of those
    partners': paris's issuer does not speak for zurich or rome. An issuer several partners
    share must say which."""
    name = str(claims.values.get("preferred_username") or claims.subject)
    if "@" not in name:
        if len(domains) != 1:
            raise TokenError("the issuer serves several partners: the token must name the domain")
        name = f"{name}@{domains[0]}"
    try:
        address = parse_address(name)
    except InvalidAddress as exc:
        raise TokenError("the token names no usable user") from exc
    if address.domain not in domains:
        shown = ", ".join(domains)
        raise TokenError(f"the issuer of {shown} cannot speak for users of another domain")
    return str(address)


def _display(name: Any, address: str) -> str:
    return name[:255] if isinstance(name, str) and name.strip() else address
