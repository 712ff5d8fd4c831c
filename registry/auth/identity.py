"""From a bearer token to a `Principal`: validate, then find or create the user (and their
personal space) once, remembering the answer so later requests cost no query."""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import HTTPConnection

from federation.oidc import Claims, IssuerUnavailable, TokenError, TokenValidator, UntrustedIssuer
from registry.access.principal import Principal
from registry.auth import user_store as users
from registry.auth.partners import PartnerTokens
from registry.core.clock import Clock
from registry.core.errors import Forbidden, Unauthenticated, Unavailable

KNOWN_USERS_CACHE_SIZE = 50_000
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="spacereg"'}
# What an error_description may not hold (RFC 6750 section 3: %x20-21 / %x23-5B / %x5D-7E).
_NOT_IN_DESCRIPTION = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")

# Called in the transaction that creates a user: (conn, user id, username, display name).
# The registry gives each new user a personal space this way.
NewUserHook = Callable[[AsyncConnection, str, str, str], Awaitable[None]]
Transaction = Callable[[], AbstractAsyncContextManager[AsyncConnection]]


class Authenticator:
    def __init__(
        self,
        validator: TokenValidator,
        transaction: Transaction,
        on_new_user: NewUserHook,
        home_issuer: str,
        admin_users: frozenset[str],
        admin_role: str,
        roles_claim: str,
        clock: Clock,
        partners: PartnerTokens | None = None,
    ) -> None:
        self._validator = validator
        self._partners = partners
        self._clock = clock
        self._transaction = transaction
        self._on_new_user = on_new_user
        self._home_issuer = home_issuer
        self._admin_users = admin_users
        self._admin_role = admin_role
        self._roles_claim = roles_claim
        self._known: OrderedDict[tuple[str, str], tuple[str, str, str]] = OrderedDict()

    async def authenticate(self, connection: HTTPConnection) -> Principal:
        """One of our users; a partner's user is refused (403): what they may use here is
        what was shared with them, which only the endpoints taking `anyone` serve."""
        principal = await self.anyone(connection)
        if principal.remote is not None:
            raise Forbidden("a partner's user may use only what was shared with them")
        return principal

    async def anyone(self, connection: HTTPConnection) -> Principal:
        """One of our users, or a partner's user by a token of the partner's issuer."""
        header = connection.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("a bearer token is required", headers=CHALLENGE)
        try:
            claims = await self._validator.validate(token.strip())
        except UntrustedIssuer as exc:
            if self._partners is None:
                raise _refused(exc) from exc
            return await self.partner(token.strip())
        except TokenError as exc:
            raise _refused(exc) from exc
        return await self._ours(claims)

    async def partner(
        self, token: str, nonce: str | None = None, issuer: str | None = None
    ) -> Principal:
        """The partner's user a token of an issuer an active partner vouches for names
        (`PartnerTokens.principal`)."""
        if self._partners is None:
            raise _refused(UntrustedIssuer("no partner's issuer is trusted"))
        try:
            return await self._partners.principal(token, nonce, issuer)
        except TokenError as exc:
            raise _refused(exc) from exc

    async def principal(self, token: str) -> Principal:
        """One of our users, by an access token of a trusted issuer (the web UI's login
        hands it one it received)."""
        try:
            claims = await self._validator.validate(token)
        except TokenError as exc:
            raise _refused(exc) from exc
        return await self._ours(claims)

    async def _ours(self, claims: Claims) -> Principal:
        user_id, username, display_name = await self._user(claims)
        granted_roles = claims.values.get(self._roles_claim)
        is_admin = (claims.issuer.url == self._home_issuer and username in self._admin_users) or (
            isinstance(granted_roles, list) and self._admin_role in granted_roles
        )
        return Principal(user_id, username, display_name, claims.groups(), is_admin)

    async def _user(self, claims: Claims) -> tuple[str, str, str]:
        key = (claims.issuer.url, claims.subject)
        known = self._known.get(key)
        if known is not None:
            self._known.move_to_end(key)
            return known
        username = self._username(claims)
        display_name = str(claims.values.get("name") or username)
        email = claims.values.get("email")
        async with self._transaction() as conn:
            user_id = await register(
                conn,
                self._on_new_user,
                claims.issuer.url,
                claims.subject,
                username,
                display_name,
                email if isinstance(email, str) else None,
                self._clock.now(),
            )
        known = (user_id, username, display_name)
        self._known[key] = known
        if len(self._known) > KNOWN_USERS_CACHE_SIZE:
            self._known.popitem(last=False)
        return known

    def _username(self, claims: Claims) -> str:
        """Users of the home issuer go by their plain name; others by name@issuer-host."""
        name = str(claims.values.get("preferred_username") or claims.subject)
        if claims.issuer.url == self._home_issuer:
            return name
        return f"{name}@{urlsplit(claims.issuer.url).netloc}"


def _refused(exc: TokenError) -> Exception:
    """The answer to a token we cannot take: 503 if its issuer cannot be asked now, else
    401 saying why (RFC 6750's `invalid_token`)."""
    if isinstance(exc, IssuerUnavailable):
        return Unavailable(f"cannot check the token now: {exc}")
    description = _NOT_IN_DESCRIPTION.sub("?", str(exc))[:200]
    return Unauthenticated(
        str(exc),
        headers={
            "WWW-Authenticate": f'Bearer realm="spacereg", error="invalid_token", '
            f'error_description="{description}"'
        },
    )


async def register(
    conn: AsyncConnection,
    on_new_user: NewUserHook,
    issuer: str,
    subject: str,
    username: str,
    display_name: str,
    email: str | None,
    now: datetime,
) -> str:
    """Find or create the user (`on_new_user` hears of a new one). Returns our user id."""
    user_id, created = await users.upsert(conn, issuer, subject, username, display_name, email, now)
    if created:
        await on_new_user(conn, user_id, username, display_name)
    return user_id
