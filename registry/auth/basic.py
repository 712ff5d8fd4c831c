"""Who is calling on the routes desktop clients use (WebDAV, the client endpoints): an app
password in HTTP Basic (all those clients send, before any challenge), or a bearer token as on
every other route. A 401 there offers both."""

from __future__ import annotations

import base64

from starlette.requests import HTTPConnection

from registry.access.principal import Authenticate, Principal
from registry.auth import user_store
from registry.auth.app_passwords import AppPasswords, Transaction
from registry.core.errors import Unauthenticated

BASIC_REALM = 'Basic realm="spacereg"'


class ClientAuthenticator:
    def __init__(
        self, bearer: Authenticate, app_passwords: AppPasswords, transaction: Transaction
    ) -> None:
        self._bearer = bearer
        self._app_passwords = app_passwords
        self._transaction = transaction

    async def authenticate(self, connection: HTTPConnection) -> Principal:
        scheme, _, credentials = connection.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            return await self._basic(connection, credentials.strip())
        try:
            return await self._bearer(connection)
        except Unauthenticated as exc:
            bearer = (exc.headers or {}).get("WWW-Authenticate", 'Bearer realm="spacereg"')
            raise Unauthenticated(
                "an app password (HTTP Basic) or a bearer token is required",
                headers={"WWW-Authenticate": f"{BASIC_REALM}, {bearer}"},
            ) from exc

    async def email(self, user_id: str) -> str | None:
        async with self._transaction() as conn:
            return await user_store.email_of(conn, user_id)

    async def _basic(self, connection: HTTPConnection, credentials: str) -> Principal:
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except ValueError:  # not base64 (of ASCII text at all), or not UTF-8 inside
            decoded = ""
        username, colon, password = decoded.partition(":")
        address = connection.client.host if connection.client else None
        principal = None
        if colon and username and password:
            principal = await self._app_passwords.principal(username, password, address)
        if principal is None:
            raise Unauthenticated(
                "the user name or app password is wrong",
                headers={"WWW-Authenticate": f'{BASIC_REALM}, Bearer realm="spacereg"'},
            )
        return principal
