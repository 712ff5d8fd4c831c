"""Login, logout and the checks every page makes: which session the cookie names, who it acts
for, and, before anything changes, that the request carries the session's CSRF token and
comes from our own pages."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from registry.access.principal import Principal
from registry.core.errors import BadRequest, Forbidden, Unauthenticated
from registry.core.routing import Resource
from registry.web.oidc_client import OidcClient
from registry.web.render import LoginRequired, page, see_other
from registry.web.sessions import LOGIN_COOKIE_S, SESSION_TTL, Session, SessionStore

COOKIE = "spacereg_session"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
CALLBACK_PATH = "/login/callback"

# The user an access token names (`Authenticator.principal`).
TokenPrincipal = Callable[[str], Awaitable[Principal]]


class WebAuth:
    def __init__(
        self, sessions: SessionStore, oidc: OidcClient, principal: TokenPrincipal, base_url: str
    ) -> None:
        self._sessions = sessions
        self._oidc = oidc
        self._principal = principal
        self._origin = "{0.scheme}://{0.netloc}".format(urlsplit(base_url))
        self._secure = base_url.startswith("https://")

    async def session(self, request: Request) -> Session | None:
        token = request.cookies.get(COOKIE)
        return await self._sessions.find(token) if token else None

    async def user(self, request: Request) -> tuple[Session, Principal]:
        """The logged-in session, or LoginRequired."""
        session = await self.session(request)
        if session is None or session.principal is None:
            raise LoginRequired
        return session, session.principal

    async def form(self, request: Request) -> tuple[Session, Principal, FormData]:
        """The session, its user and the form of a state-changing request, CSRF checked."""
        session, principal = await self.user(request)
        form = await request.form()
        self.check(request, session, str(form.get(CSRF_FIELD, "")))
        return session, principal, form

    def check(self, request: Request, session: Session, token: str) -> None:
        """Forbidden unless `token` (form field or header) is the session's CSRF token and the
        browser says the request comes from our own origin (when it says where from)."""
        token = token or request.headers.get(CSRF_HEADER, "")
        if not token or not hmac.compare_digest(token, session.csrf_token):
            raise Forbidden("the form is out of date (its security token is missing or wrong)")
        origin = request.headers.get("origin")
        if origin is not None and origin != self._origin:
            raise Forbidden("the request does not come from this site's pages")

    async def login(self, request: Request) -> Response:
        next_path = local_path(request.query_params.get("next", "/"))
        token, session = await self._sessions.begin_login(next_path)
        assert session.login_state is not None and session.code_verifier is not None
        url = await self._oidc.authorization_url(session.login_state, session.code_verifier)
        return self.with_cookie(see_other(url), token, max_age=LOGIN_COOKIE_S)

    async def callback(self, request: Request) -> Response:
        session, code = await self.returning(request)
        assert session.code_verifier is not None
        access_token = await self._oidc.access_token(code, session.code_verifier)
        return await self.logged_in(session, await self._principal(access_token))

    async def returning(self, request: Request) -> tuple[Session, str]:
        """The login this browser started, back from the identity provider with its code:
        the state must be the one the session holds."""
        session = await self.session(request)
        state = request.query_params.get("state", "")
        code = request.query_params.get("code")
        if session is None or session.login_state is None or session.code_verifier is None:
            raise Unauthenticated("this login has expired or was started elsewhere; log in again")
        if not hmac.compare_digest(state, session.login_state):
            raise Unauthenticated("this login does not match the one this browser started")
        if not code:
            error = request.query_params.get("error", "no authorization code")
            raise BadRequest(f"the identity provider did not log you in: {error}")
        return session, code

    async def logged_in(self, pending: Session, principal: Principal) -> Response:
        """A new session for `principal` in place of the login's; back where it started."""
        token, _ = await self._sessions.log_in(pending, principal)
        response = see_other(pending.next_path or "/")
        return self.with_cookie(response, token, max_age=int(SESSION_TTL.total_seconds()))

    async def logout(self, request: Request) -> Response:
        session = await self.session(request)
        if session is not None:
            form = await request.form()
            self.check(request, session, str(form.get(CSRF_FIELD, "")))
            await self._sessions.end(session.token_hash)
        response = see_other("/logged-out")
        response.delete_cookie(COOKIE, path="/", secure=self._secure, httponly=True)
        return response

    def with_cookie(self, response: Response, token: str, max_age: int) -> Response:
        response.set_cookie(
            COOKIE,
            token,
            max_age=max_age,
            path="/",
            secure=self._secure,
            httponly=True,
            samesite="lax",
        )
        return response

    def routes(self) -> list[Route]:
        return [
            Resource("/login", {"GET": page(self.login)}),
            Resource(CALLBACK_PATH, {"GET": page(self.callback)}),
            Resource("/logout", {"POST": page(self.logout)}),
        ]


def local_path(path: str) -> str:
    """Where a login may come back to: a path of this site, else the start page."""
    if not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path
