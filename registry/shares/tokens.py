"""The OCM code flow, zurich's side: a peer's registry exchanges a share's secret for a
short-lived access token to that share (`POST /ocm/token`, signed by the peer the share
was sent to), and the WebDAV gateway takes such a token as the share's recipient, for that
share's space only, with the role the recipient holds there now. Tokens are kept by SHA-256
only and end with their share."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs

from sqlalchemy import delete, insert, select
from starlette.requests import HTTPConnection, Request

from registry.access.principal import Authenticate, Principal
from registry.core.clock import Clock
from registry.core.errors import ApiError, NotFound, Unauthenticated
from registry.core.models import ShareToken, table
from registry.peers.guard import PeerGuard, Transaction, hash_token
from registry.shares import store

tokens = table(ShareToken)

TOKEN_PATH = "/ocm/token"
TOKEN_TTL = timedelta(minutes=10)
TOKEN_PREFIX = "ocmshare_"  # tells a share's token from an OpenID Connect one at a glance


class InvalidGrant(ApiError):
    """OAuth's answer to a code (a share's secret) we do not take."""

    status = 400
    code = "invalid_grant"


class ShareTokens:
    def __init__(self, transaction: Transaction, guard: PeerGuard, clock: Clock) -> None:
        self._transaction = transaction
        self._guard = guard
        self._clock = clock

    async def exchange(self, request: Request, body: bytes) -> dict[str, Any]:
        form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        if form.get("grant_type") != "authorization_code":
            raise InvalidGrant(
                "grant_type must be authorization_code", code="unsupported_grant_type"
            )
        client, code = form.get("client_id", ""), form.get("code", "")
        if not client or not code:
            raise InvalidGrant("client_id and code are required", code="invalid_request")
        await self._guard.check(request, body, client)
        now = self._clock.now()
        async with self._transaction() as conn:
            share = await store.outgoing_by_secret(conn, hash_token(code))
            if share is None or share.peer_domain != client or share.state == store.DECLINED:
                raise InvalidGrant("no share with this secret for you")
            token = TOKEN_PREFIX + secrets.token_urlsafe(32)
            await conn.execute(delete(tokens).where(tokens.c.expires_at <= now))
            await conn.execute(
                insert(tokens).values(
                    token_hash=hash_token(token), share_id=share.id, expires_at=now + TOKEN_TTL
                )
            )
        seconds = int(TOKEN_TTL.total_seconds())
        return {"access_token": token, "token_type": "Bearer", "expires_in": seconds}

    def for_dav(self, authenticate: Authenticate) -> Authenticate:
        """`authenticate`, also taking a share's token, for the space of that share only."""

        async def either(connection: HTTPConnection) -> Principal:
            scheme, _, token = connection.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not token.startswith(TOKEN_PREFIX):
                return await authenticate(connection)
            share = await self._share_of(token.strip())
            wanted = connection.scope["path"].removeprefix(connection.scope.get("root_path", ""))
            if wanted.lstrip("/").partition("/")[0] != share.space_id:
                raise NotFound("this token opens one share only")
            return Principal("", share.recipient, share.recipient, (), False, share.recipient)

        return either

    async def _share_of(self, token: str) -> Any:
        async with self._transaction() as conn:
            found = await conn.execute(
                select(store.outgoing)
                .join(tokens, tokens.c.share_id == store.outgoing.c.id)
                .where(
                    tokens.c.token_hash == hash_token(token),
                    tokens.c.expires_at > self._clock.now(),
                )
            )
            share = found.first()
        if share is None or share.state == store.DECLINED:
            raise Unauthenticated("the share's access token is unknown, expired or revoked")
        return share
