"""The embedded OpenID Connect provider: authorization code flow with PKCE (S256 only), a login
form, rotating refresh tokens. For development and demos; replace it with any OIDC provider.

Clients are public (no secret): PKCE is required. A redirect URI must be on this instance or a
loopback URL (RFC 8252, for desktop clients). A partner registry is a client too, while the
peering is active: its client id is its domain (what peering knows it by, and what its
operator can name without knowing our URLs), its redirect URIs must be on its own base URL,
and its tokens have its domain as audience, so that they open nothing here and nothing at
another partner."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import html
import secrets
from collections.abc import Awaitable, Callable
from datetime import timedelta
from importlib.resources import files
from typing import Any
from urllib.parse import urlencode, urlsplit

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from registry.auth.idp import grant_store
from registry.auth.idp.keys import ACCESS_TOKEN_TTL_S, IdpKeys
from registry.auth.idp.throttle import LoginThrottle
from registry.auth.idp.users import IdpUser, sign_in
from registry.core.clock import Clock
from registry.core.errors import BadRequest
from registry.core.http import query
from registry.core.responses import JSONResponse
from registry.core.routing import Resource

# A client id → the origin of the active partner registry it names (None: no such partner).
PartnerClients = Callable[[str], Awaitable[str | None]]
CODE_TTL = timedelta(seconds=60)
REFRESH_TTL = timedelta(days=30)

_FORM = (files("registry.auth.idp") / "templates" / "login.html").read_text()
_AUTHORIZE_PARAMS = (
    "client_id",
    "redirect_uri",
    "state",
    "scope",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "response_type",
)


class EmbeddedIdp:
    def __init__(
        self,
        issuer: str,
        audience: str,
        base_url: str,
        keys: IdpKeys,
        users: dict[str, IdpUser],
        engine: AsyncEngine,
        clock: Clock,
        throttle: LoginThrottle,
        partners: PartnerClients | None = None,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.base_url = base_url
        self.keys = keys
        self.users = users
        self._engine = engine
        self._clock = clock
        self._throttle = throttle
        self._partners = partners

    def access_token_for(self, username: str, client_id: str = "spacereg-cli") -> str:
        user = self.users[username]
        return self.keys.access_token(
            self.issuer, self.audience, user.username, user.profile(), client_id
        )

    def routes(self) -> list[Route]:
        return [
            Resource("/idp/.well-known/openid-configuration", {"GET": self.configuration}),
            Resource("/idp/jwks", {"GET": self.jwks}),
            Resource("/idp/authorize", {"GET": self.authorize_form, "POST": self.authorize_submit}),
            Resource("/idp/token", {"POST": self.token}),
            Resource("/idp/userinfo", {"GET": self.userinfo}),
        ]

    async def configuration(self, request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "userinfo_endpoint": f"{self.issuer}/userinfo",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code", "refresh_token"],
                "code_challenge_methods_supported": ["S256"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["none"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "claims_supported": ["sub", "preferred_username", "name", "email", "groups"],
            },
            headers={"Cache-Control": "public, max-age=300"},
        )

    async def jwks(self, request: Request) -> Response:
        return JSONResponse(self.keys.jwks(), headers={"Cache-Control": "public, max-age=300"})

    async def authorize_form(self, request: Request) -> Response:
        try:
            params = dict(query(request))
        except BadRequest as exc:
            return _error_page(exc.message)
        problem = await self._check_authorize(params)
        if problem:
            return _error_page(problem)
        return self._form(params)

    async def authorize_submit(self, request: Request) -> Response:
        form = await request.form()
        params = {k: str(form[k]) for k in _AUTHORIZE_PARAMS if k in form}
        problem = await self._check_authorize(params)
        if problem:
            return _error_page(problem)
        username = str(form.get("username", ""))
        # Behind a trusted proxy, uvicorn (proxy_headers) takes it from X-Forwarded-For.
        address = request.client.host if request.client else None
        wait = await self._throttle.admit(username, address)
        if wait is not None:
            error = f"Too many failed sign-ins; try again in {wait} seconds."
            return self._form(params, username, error, status=429, retry_after=wait)
        password = str(form.get("password", ""))
        user = await asyncio.to_thread(sign_in, self.users, username, password)
        if user is None:
            return self._form(params, username, "Wrong username or password.", status=401)
        await self._throttle.succeeded(username, address)
        code = secrets.token_urlsafe(32)
        await self._store(
            code,
            "code",
            username,
            params["client_id"],
            CODE_TTL,
            redirect_uri=params["redirect_uri"],
            code_challenge=params["code_challenge"],
            scope=params.get("scope", "openid"),
            nonce=params.get("nonce"),
        )
        reply = {"code": code, "iss": self.issuer}
        if "state" in params:
            reply["state"] = params["state"]
        separator = "&" if "?" in params["redirect_uri"] else "?"
        return RedirectResponse(params["redirect_uri"] + separator + urlencode(reply), 302)

    async def token(self, request: Request) -> Response:
        form = await request.form()
        grant_type = form.get("grant_type")
        client_id = str(form.get("client_id", ""))
        if not client_id:
            return _oauth_error("invalid_client", "client_id is required", 401)
        if grant_type == "authorization_code":
            grant = await self._redeem(str(form.get("code", "")), "code", client_id)
            if grant is None or grant.redirect_uri != form.get("redirect_uri"):
                return _oauth_error("invalid_grant", "unknown, used or expired code")
            if not _pkce_ok(str(form.get("code_verifier", "")), grant.code_challenge or ""):
                return _oauth_error("invalid_grant", "code_verifier does not match")
        elif grant_type == "refresh_token":
            grant = await self._redeem(str(form.get("refresh_token", "")), "refresh", client_id)
            if grant is None:
                return _oauth_error("invalid_grant", "unknown, used or expired refresh token")
        else:
            return _oauth_error("unsupported_grant_type", f"grant_type {grant_type!r}")
        user = self.users.get(grant.username)
        if user is None:
            return _oauth_error("invalid_grant", "the user no longer exists")
        audience = await self._audience(client_id, grant.redirect_uri)
        if audience is None:  # a partner revoked since
            return _oauth_error("invalid_grant", "this client may no longer have tokens")
        return await self._tokens(user, client_id, audience, grant)

    async def userinfo(self, request: Request) -> Response:
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        validator = request.app.state.services.validator
        try:
            claims = await validator.validate(token)
        except Exception:
            return _oauth_error("invalid_token", "a valid access token is required", 401)
        user = self.users.get(claims.subject)
        if claims.issuer.url != self.issuer or user is None:
            return _oauth_error("invalid_token", "not a token of this issuer", 401)
        return JSONResponse({"sub": user.username, **user.profile()})

    async def _tokens(self, user: IdpUser, client_id: str, audience: str, grant: Any) -> Response:
        scope, nonce, refresh = grant.scope, grant.nonce, secrets.token_urlsafe(32)
        await self._store(
            refresh,
            "refresh",
            user.username,
            client_id,
            REFRESH_TTL,
            scope=scope,
            redirect_uri=grant.redirect_uri,
        )
        body: dict[str, Any] = {
            "access_token": self.keys.access_token(
                self.issuer, audience, user.username, user.profile(), client_id, scope
            ),
            "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_TTL_S,
            "refresh_token": refresh,
            "scope": scope,
        }
        if "openid" in scope.split():
            now = int(self._clock.now().timestamp())
            id_claims = {
                "iss": self.issuer,
                "aud": client_id,
                "sub": user.username,
                "iat": now,
                "exp": now + ACCESS_TOKEN_TTL_S,
                **user.profile(),
            }
            if nonce:
                id_claims["nonce"] = nonce
            body["id_token"] = self.keys.sign(id_claims)
        return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    async def _store(
        self, token: str, kind: str, username: str, client_id: str, ttl: timedelta, **extra: Any
    ) -> None:
        async with self._engine.begin() as conn:
            await grant_store.insert(
                conn,
                {
                    "token_hash": _digest(token),
                    "kind": kind,
                    "username": username,
                    "client_id": client_id,
                    "expires_at": self._clock.now() + ttl,
                    **extra,
                },
            )

    async def _redeem(self, token: str, kind: str, client_id: str) -> Any:
        """Mark a code or refresh token used, exactly once; None if it cannot be used."""
        async with self._engine.begin() as conn:
            return await grant_store.redeem(
                conn, _digest(token), kind, client_id, self._clock.now()
            )

    async def _check_authorize(self, params: dict[str, str]) -> str | None:
        if params.get("response_type") != "code":
            return "response_type must be 'code'."
        if not params.get("client_id") or len(params["client_id"]) > 255:
            return "client_id is missing."
        if await self._audience(params["client_id"], params.get("redirect_uri", "")) is None:
            return "redirect_uri is not allowed for this instance."
        if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
            return "PKCE with code_challenge_method=S256 is required."
        return None

    async def _audience(self, client_id: str, redirect_uri: str | None) -> str | None:
        """Whom tokens for this client, sent to `redirect_uri`, are for; None: not allowed.
        A partner's client (its domain) is that partner, at its own base URL only; any other
        client is one of ours (refresh tokens made before redirect URIs were kept have none)."""
        partner = await self._partners(client_id) if self._partners is not None else None
        if partner is not None:
            parts = urlsplit(redirect_uri or "")
            ok = not parts.fragment and f"{parts.scheme}://{parts.netloc}" == partner
            return client_id if ok else None
        if redirect_uri is None or self._redirect_allowed(redirect_uri):
            return self.audience
        return None

    def _redirect_allowed(self, uri: str) -> bool:
        parts = urlsplit(uri)
        if parts.fragment or not parts.netloc:
            return False
        if f"{parts.scheme}://{parts.netloc}" == self.base_url:
            return True
        return parts.scheme == "http" and parts.hostname in {"127.0.0.1", "localhost", "::1"}

    def _form(
        self,
        params: dict[str, str],
        username: str = "",
        error: str = "",
        status: int = 200,
        retry_after: int | None = None,
    ) -> Response:
        hidden = "".join(
            f'<input type="hidden" name="{k}" value="{html.escape(v)}">'
            for k, v in params.items()
            if k in _AUTHORIZE_PARAMS
        )
        page = _FORM.format(
            instance=html.escape(self.base_url),
            action=f"{self.issuer}/authorize",
            hidden=hidden,
            username=html.escape(username),
            error=f'<p class="error" role="alert">{html.escape(error)}</p>' if error else "",
        )
        headers = {"Cache-Control": "no-store", "X-Frame-Options": "DENY"}
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        return HTMLResponse(page, status_code=status, headers=headers)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _pkce_ok(verifier: str, challenge: str) -> bool:
    if not 43 <= len(verifier) <= 128:
        return False
    computed = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    return hmac.compare_digest(computed.decode(), challenge)


def _oauth_error(error: str, description: str, status: int = 400) -> Response:
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )


def _error_page(message: str) -> Response:
    return HTMLResponse(
        f"<!doctype html><title>Sign-in error</title><h1>Cannot sign in</h1>"
        f"<p>{html.escape(message)}</p>",
        status_code=400,
    )
