"""A minimal external OpenID Connect issuer for tests: discovery document and JWKS over real
HTTP, with keys the test controls and a count of JWKS fetches; and the authorization code flow
with PKCE for a confidential client (`client_id`, `client_secret`), whose login always signs
the browser in as its token's default user (its own login form is not what is tested)."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Route

from tests.servers import free_port, serve


class TestIssuer:
    __test__ = False

    def __init__(self) -> None:
        self.url = ""
        self.keys: list[Any] = [RSAKey.generate_key(2048, private=True, parameters={"kid": "k1"})]
        self.jwks_fetches = 0
        self.discovery_issuer: str | None = None  # override to lie about the issuer
        self.down = False
        self.client_id, self.client_secret = "spacereg", "a-secret-of-the-web-ui"
        self._codes: dict[str, str] = {}  # code -> PKCE challenge

    def app(self) -> Starlette:
        async def configuration(request: Request) -> JSONResponse:
            if self.down:
                return JSONResponse({"error": "down"}, status_code=503)
            return JSONResponse(
                {
                    "issuer": self.discovery_issuer or self.url,
                    "jwks_uri": f"{self.url}/jwks",
                    "authorization_endpoint": f"{self.url}/authorize",
                    "token_endpoint": f"{self.url}/token",
                }
            )

        async def jwks(request: Request) -> JSONResponse:
            self.jwks_fetches += 1
            public = KeySet([type(k).import_key(k.as_dict(private=False)) for k in self.keys])
            return JSONResponse(public.as_dict())

        async def authorize(request: Request) -> RedirectResponse:
            query = request.query_params
            assert query["client_id"] == self.client_id
            assert query["code_challenge_method"] == "S256"
            code = secrets.token_urlsafe(16)
            self._codes[code] = query["code_challenge"]
            state = query["state"]
            return RedirectResponse(f"{query['redirect_uri']}?code={code}&state={state}", 302)

        async def token(request: Request) -> JSONResponse:
            form = await request.form()
            basic = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
            if request.headers.get("authorization") != f"Basic {basic}":
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            challenge = self._codes.pop(str(form.get("code")), None)
            verifier = str(form.get("code_verifier", "")).encode()
            computed = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=")
            if challenge is None or computed.decode() != challenge:
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            return JSONResponse({"access_token": self.token(), "token_type": "Bearer"})

        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", configuration),
                Route("/jwks", jwks),
                Route("/authorize", authorize),
                Route("/token", token, methods=["POST"]),
            ]
        )

    def rotate(self, kid: str, ec: bool = False) -> Any:
        key = (
            ECKey.generate_key("P-256", private=True, parameters={"kid": kid})
            if ec
            else RSAKey.generate_key(2048, private=True, parameters={"kid": kid})
        )
        self.keys.append(key)
        return key

    def token(self, key: Any = None, header: dict[str, Any] | None = None, **claims: Any) -> str:
        key = key or self.keys[0]
        now = int(time.time())
        values = {
            "iss": self.url,
            "aud": "spacereg",
            "sub": "u-123",
            "iat": now,
            "exp": now + 600,
            "preferred_username": "marie",
            "name": "Marie Curie",
            "groups": ["physics-lovers"],
            "jti": uuid.uuid4().hex,
            **claims,
        }
        values = {k: v for k, v in values.items() if v is not None}
        alg = "ES256" if isinstance(key, ECKey) else "RS256"
        return jwt.encode(
            {"alg": alg, "kid": key.kid, **(header or {})}, values, key, algorithms=[alg]
        )


@contextmanager
def running_issuer() -> Iterator[TestIssuer]:
    issuer = TestIssuer()
    port = free_port()
    issuer.url = f"http://127.0.0.1:{port}"
    with serve(issuer.app(), port):
        yield issuer
