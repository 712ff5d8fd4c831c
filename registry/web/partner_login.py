"""Logging in with one's own organisation: a partner's user who opens a share link here
(`/s/<space>/<path>`) without a session is offered our login and "log in with your own
organisation". She names herself (`marie@paris.test`) or picks her organisation among the
active partners; we send her through the authorization code flow with PKCE, state and nonce
at the issuer her organisation vouches for, and her ID token makes a session for the
partner's user `marie@paris.test`, who sees what was shared with her and nothing else.

The form is throttled like sign-ins (per address and per what was typed), and it starts
discovery only for an active partner's domain."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from registry.access.principal import Principal
from registry.auth.idp.throttle import LoginThrottle
from registry.core.errors import TooManyRequests, Unauthenticated
from registry.core.routing import Resource
from registry.web.auth import WebAuth, local_path
from registry.web.partner_oidc import PartnerOidc, checked_address
from registry.web.render import LoginRequired, page, render, see_other
from registry.web.sessions import LOGIN_COOKIE_S, SessionStore

PARTNER_PATH = "/login/partner"
PARTNER_CALLBACK_PATH = "/login/partner/callback"
# The partner's identity provider is on another site: the form leads there (by a redirect).
OFFER_POLICY = (
    "default-src 'self'; frame-ancestors 'none'; form-action 'self' https:;"
    " base-uri 'none'; object-src 'none'"
)

# (ID token, nonce, issuer) → the partner's user it names (`Authenticator.partner`).
PartnerPrincipal = Callable[[str, str, str], Awaitable[Principal]]


class PartnerLogin:
    def __init__(
        self,
        auth: WebAuth,
        sessions: SessionStore,
        oidc: PartnerOidc,
        throttle: LoginThrottle,
        principal: PartnerPrincipal,
    ) -> None:
        self._auth = auth
        self._sessions = sessions
        self._oidc = oidc
        self._throttle = throttle
        self._principal = principal

    async def offer(self, request: Request, next_path: str) -> Response:
        """The page of a share link opened without a session: both ways to log in (with
        no partner whose users may log in here, straight to our own login)."""
        partners = await self._oidc.domains()
        if not partners:
            raise LoginRequired
        response = render(
            request, "partner_login.html", user=None, next=next_path, partners=partners
        )
        response.headers["Content-Security-Policy"] = OFFER_POLICY
        return response

    async def start(self, request: Request) -> Response:
        who = checked_address(request.query_params.get("who", ""))
        next_path = local_path(request.query_params.get("next", "/"))
        address = request.client.host if request.client else None
        wait = await self._throttle.admit(who.lower(), address)
        if wait is not None:
            raise TooManyRequests(f"Too many tries; try again in {wait} seconds.", wait)
        found = await self._oidc.find(who)
        issuer = found.configuration.issuer
        token, session = await self._sessions.begin_login(next_path, issuer)
        await self._throttle.succeeded(who.lower(), address)
        assert session.login_state and session.login_nonce and session.code_verifier
        url = self._oidc.authorization_url(
            found.configuration, session.login_state, session.login_nonce, session.code_verifier
        )
        return self._auth.with_cookie(see_other(url), token, max_age=LOGIN_COOKIE_S)

    async def callback(self, request: Request) -> Response:
        session, code = await self._auth.returning(request)
        issuer, nonce = session.login_issuer, session.login_nonce
        if issuer is None or nonce is None or session.code_verifier is None:
            raise Unauthenticated("this login was not started with your own organisation")
        id_token = await self._oidc.id_token(issuer, code, session.code_verifier)
        principal = await self._principal(id_token, nonce, issuer)
        return await self._auth.logged_in(session, principal)

    def routes(self) -> list[Route]:
        return [
            Resource(PARTNER_PATH, {"GET": page(self.start)}),
            Resource(PARTNER_CALLBACK_PATH, {"GET": page(self.callback)}),
        ]
