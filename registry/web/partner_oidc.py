"""Our web UI as an OpenID Connect client of a partner's issuer, for the partner's users who
open a share link here: which issuer (only one an active partner vouches for; found by
WebFinger for the address she typed, so discovery never starts for a domain we do not peer
with), its endpoints, and redeeming the code. Everything is fetched through the SSRF-safe
client: the partner's answers cannot make us reach a private address."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from federation.addresses import parse_address
from federation.discovery import Discovery
from federation.errors import DiscoveryError
from federation.oidc_discovery import (
    OpenIDConfiguration,
    openid_configuration_url,
    parse_openid_configuration,
)
from federation.safe_http import SafeHttpClient
from registry.core.errors import BadRequest, NotFound, Unauthenticated, Unavailable
from registry.peers.service import Peering
from registry.web.oidc_client import code_challenge

SCOPE = "openid profile"


@dataclass(frozen=True)
class PartnerIssuer:
    domain: str
    configuration: OpenIDConfiguration


class NotAPartner(NotFound):
    code = "notAPartner"


class PartnerOidc:
    """`client_id`: ours at every partner's issuer, our domain (see `registry.auth.idp`)."""

    def __init__(
        self,
        peering: Peering,
        discovery: Discovery,
        outbound: SafeHttpClient,
        client_id: str,
        redirect_uri: str,
    ) -> None:
        self._peering = peering
        self._discovery = discovery
        self._outbound = outbound
        self.client_id = client_id
        self.redirect_uri = redirect_uri

    async def domains(self) -> list[str]:
        """The active partners whose users may log in here (those vouching for an issuer)."""
        vouched = await self._peering.vouched_issuers()
        return sorted({domain for domains in vouched.values() for domain in domains})

    async def find(self, who: str) -> PartnerIssuer:
        """The issuer for `who`: an address (`marie@paris.test`: WebFinger says which of
        paris's issuers is hers) or a partner's domain (its first issuer)."""
        who = who.strip()
        address = parse_address(who) if "@" in who else None
        domain = address.domain if address is not None else who.lower()
        issuers = await self._peering.vouched_issuers()
        vouched = [url for url, domains in issuers.items() if domain in domains]
        if not vouched:
            raise NotAPartner(f"{domain} is not a partner whose users may log in here")
        issuer = vouched[0]
        if address is not None:
            try:
                issuer = (await self._discovery.discover(address)).issuer
            except DiscoveryError as exc:
                raise Unavailable(f"cannot find the login of {address}: {exc}") from exc
            if issuer not in vouched:
                raise NotAPartner(f"{domain} does not vouch for the login of {address}")
        return PartnerIssuer(domain, await self.configuration(issuer))

    async def configuration(self, issuer: str) -> OpenIDConfiguration:
        try:
            fetched = await self._outbound.get(openid_configuration_url(issuer), what="issuer")
            found = parse_openid_configuration(fetched.json_object("issuer"), issuer)
            for endpoint in (found.authorization_endpoint, found.token_endpoint):
                if endpoint is None:
                    raise Unavailable(f"{issuer} offers no authorization code flow")
                self._outbound.check_url(endpoint)
        except DiscoveryError as exc:
            raise Unavailable(f"the partner's login cannot be reached: {exc}") from exc
        return found

    def authorization_url(
        self, found: OpenIDConfiguration, state: str, nonce: str, verifier: str
    ) -> str:
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": SCOPE,
            "state": state,
            "nonce": nonce,
            "code_challenge": code_challenge(verifier),
            "code_challenge_method": "S256",
        }
        assert found.authorization_endpoint is not None
        return f"{found.authorization_endpoint}?{urlencode(query)}"

    async def id_token(self, issuer: str, code: str, verifier: str) -> str:
        """Redeem the code at `issuer` (the one the login was sent to); its ID token."""
        found = await self.configuration(issuer)
        assert found.token_endpoint is not None
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "client_id": self.client_id,
            "code_verifier": verifier,
        }
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        try:
            answer = await self._outbound.exchange(
                found.token_endpoint, urlencode(form).encode(), headers, what="token request"
            )
            body = answer.json_object("token answer")
        except DiscoveryError as exc:
            raise Unavailable(f"the partner's login cannot be reached: {exc}") from exc
        token = body.get("id_token")
        if answer.status != 200 or not isinstance(token, str):
            raise Unauthenticated("the partner's identity provider refused the login")
        return token


def checked_address(text: str) -> str:
    """What the form's field holds: an address, or a partner's domain picked from the list."""
    text = text.strip()
    if not text or len(text) > 512:
        raise BadRequest("give your address at your organisation (marie@paris.test)")
    if "@" in text:
        try:
            parse_address(text)
        except DiscoveryError as exc:
            raise BadRequest(f"{text!r} is not an address like marie@paris.test") from exc
    return text
