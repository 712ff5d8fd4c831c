"""The web UI as an OpenID Connect client of the home issuer: the authorization code flow with
PKCE (S256). The code is redeemed server-side; the tokens stay on the server and only serve to
learn who logged in (the session keeps that, never the tokens)."""

from __future__ import annotations

import base64
import hashlib
from typing import Any
from urllib.parse import urlencode

import httpx2

from registry.core.errors import Unauthenticated, Unavailable

SCOPE = "openid profile email"


def code_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class OidcClient:
    """`http` reaches the issuer (for the embedded IdP: in process). A `client_secret` makes
    it a confidential client at issuers that register it so."""

    def __init__(
        self,
        http: httpx2.AsyncClient,
        issuer: str,
        client_id: str,
        redirect_uri: str,
        client_secret: str = "",
    ) -> None:
        self._http = http
        self._issuer = issuer
        self._client_id = client_id
        self._client_secret = client_secret
        self.redirect_uri = redirect_uri
        self._configuration: dict[str, Any] | None = None

    async def authorization_url(self, state: str, verifier: str) -> str:
        endpoint = (await self._endpoints())["authorization_endpoint"]
        query = {
            "response_type": "code",
            "client_id": self._client_id,
            "redirect_uri": self.redirect_uri,
            "scope": SCOPE,
            "state": state,
            "code_challenge": code_challenge(verifier),
            "code_challenge_method": "S256",
        }
        return f"{endpoint}?{urlencode(query)}"

    async def access_token(self, code: str, verifier: str) -> str:
        """Redeem the code; Unauthenticated if the issuer refuses it."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "client_id": self._client_id,
            "code_verifier": verifier,
        }
        endpoint = (await self._endpoints())["token_endpoint"]
        try:
            if self._client_secret:  # client_secret_basic
                secret = (self._client_id, self._client_secret)
                response = await self._http.post(endpoint, data=form, auth=secret)
            else:
                response = await self._http.post(endpoint, data=form)
        except httpx2.HTTPError as exc:
            raise Unavailable(f"the identity provider cannot be reached: {exc}") from exc
        body = _json(response)
        token = body.get("access_token")
        if response.status_code != 200 or not isinstance(token, str):
            raise Unauthenticated("the identity provider refused the login; please try again")
        return token

    async def _endpoints(self) -> dict[str, Any]:
        if self._configuration is None:
            url = f"{self._issuer}/.well-known/openid-configuration"
            try:
                response = await self._http.get(url)
            except httpx2.HTTPError as exc:
                raise Unavailable(f"the identity provider cannot be reached: {exc}") from exc
            document = _json(response)
            endpoints = ("authorization_endpoint", "token_endpoint")
            if response.status_code != 200 or not all(
                isinstance(document.get(name), str) for name in endpoints
            ):
                raise Unavailable("the identity provider offers no authorization code flow")
            self._configuration = document
        return self._configuration


def _json(response: httpx2.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
