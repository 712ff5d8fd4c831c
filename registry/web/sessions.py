"""Browser sessions, kept in the database so that every replica knows them. The cookie holds
a random token; only its SHA-256 is stored. A session starts anonymous, holding the login in
flight (state, PKCE verifier, where to go next; at a partner's issuer also that issuer and the
nonce), and is replaced by a new one at login, so a token seen before login is worth nothing
after. A partner's user's session lasts only while the partnership is active: it is read
with the partner's state, so a revoke ends it at once on every replica."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from registry.access.principal import Principal
from registry.core.clock import Clock
from registry.core.models import WebSession, table
from registry.peers import store as peers

SESSION_TTL = timedelta(hours=8)  # a login lasts a working day
LOGIN_TTL = timedelta(minutes=10)  # to finish the sign-in form at the IdP
LOGIN_COOKIE_S = int(LOGIN_TTL.total_seconds())  # the login's cookie lasts as long as its row
_SESSIONS = table(WebSession)


@dataclass(frozen=True)
class Session:
    token_hash: str
    csrf_token: str
    principal: Principal | None
    login_state: str | None = None
    code_verifier: str | None = None
    next_path: str | None = None
    login_issuer: str | None = None  # a partner's issuer, when logging in there
    login_nonce: str | None = None


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SessionStore:
    def __init__(self, engine: AsyncEngine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    async def begin_login(self, next_path: str, issuer: str | None = None) -> tuple[str, Session]:
        """A new anonymous session holding a login in flight (at `issuer`, a partner's, with
        a nonce; else at our own); returns its cookie token."""
        state, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(64)
        nonce = secrets.token_urlsafe(32) if issuer is not None else None
        return await self._insert(
            LOGIN_TTL,
            login_state=state,
            code_verifier=verifier,
            next_path=next_path,
            login_issuer=issuer,
            login_nonce=nonce,
        )

    async def log_in(self, pending: Session, principal: Principal) -> tuple[str, Session]:
        """Replace the anonymous session by one acting for `principal`."""
        return await self._insert(
            SESSION_TTL,
            pending.token_hash,
            user_id=principal.user_id,
            username=principal.username,
            display_name=principal.display_name,
            groups=list(principal.groups),
            is_admin=principal.is_admin,
            remote=principal.remote,
        )

    async def find(self, token: str) -> Session | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(_SESSIONS).where(
                        _SESSIONS.c.token_hash == digest(token),
                        _SESSIONS.c.expires_at > self._clock.now(),
                    )
                )
            ).first()
            if row is not None and row.remote is not None:
                partner = row.remote.rpartition("@")[2]
                if await peers.active_origin(conn, partner) is None:
                    return None
        return None if row is None else _session(dict(row._mapping))

    async def end(self, token_hash: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(delete(_SESSIONS).where(_SESSIONS.c.token_hash == token_hash))

    async def _insert(
        self, ttl: timedelta, replacing: str | None = None, /, **values: Any
    ) -> tuple[str, Session]:
        """A new session of `values`, in the transaction that ends the one it is `replacing`
        and sweeps the expired."""
        token, now = secrets.token_urlsafe(32), self._clock.now()
        row = {
            "token_hash": digest(token),
            "csrf_token": secrets.token_urlsafe(32),
            "groups": [],
            "is_admin": False,
            "created_at": now,
            "expires_at": now + ttl,
            **values,
        }
        gone = _SESSIONS.c.expires_at < now
        if replacing is not None:
            gone = or_(gone, _SESSIONS.c.token_hash == replacing)
        async with self._engine.begin() as conn:
            await conn.execute(delete(_SESSIONS).where(gone))
            await conn.execute(insert(_SESSIONS).values(row))
        return token, _session(row)


def _session(row: Mapping[str, Any]) -> Session:
    """The session a row of `web_sessions` holds (a new one's values, or a row read)."""
    principal = None
    if row.get("remote") is not None:
        principal = Principal("", row["username"], row["display_name"], (), False, row["remote"])
    elif row.get("user_id") is not None:
        principal = Principal(
            row["user_id"],
            row["username"],
            row["display_name"],
            tuple(row["groups"]),
            row["is_admin"],
        )
    login = ("login_state", "code_verifier", "next_path", "login_issuer", "login_nonce")
    return Session(row["token_hash"], row["csrf_token"], principal, *(row.get(k) for k in login))
