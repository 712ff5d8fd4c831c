"""App passwords: for clients that cannot sign in with OpenID Connect (desktop clients given a
password, rclone, a mounted drive). Each is shown once, when made; the registry keeps its first
`KEY_CHARS` characters, by which it is found, and an scrypt digest of the rest, by which it is
checked. scrypt (in `hashlib`, no dependency) makes a stolen table costly to search even for a
password that leaked elsewhere; since a client sends the password on every request, a checked
one is remembered in memory (by SHA-256) and costs one indexed read after, which also sees a
revocation at once, on every replica. Failed tries are throttled with the IdP's sign-ins."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
from collections import OrderedDict
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from registry.access.principal import Principal
from registry.auth import app_password_store as store
from registry.auth.idp.throttle import LoginThrottle
from registry.core.clock import Clock
from registry.core.errors import BadRequest, NotFound, TooManyRequests
from registry.core.text import described, is_identifier, unsafe_character

KEY_CHARS = 16
SECRET_BYTES = 24
LABEL_MAX_CHARS = 200
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1  # 16 MiB and some 50 ms per check
CHECKED_CACHE_SIZE = 10_000
Transaction = Callable[[], AbstractAsyncContextManager[AsyncConnection]]


@dataclass(frozen=True)
class Made:
    key: str
    label: str
    created_at: datetime
    password: str | None = None  # only when just made


class AppPasswords:
    def __init__(
        self,
        transaction: Transaction,
        throttle: LoginThrottle,
        clock: Clock,
        home_issuer: str,
        admin_users: frozenset[str],
    ) -> None:
        self._transaction = transaction
        self._throttle = throttle
        self._clock = clock
        self._home_issuer = home_issuer
        self._admin_users = admin_users
        self._checked: OrderedDict[str, str] = OrderedDict()  # SHA-256 of password -> digest

    async def create(self, user_id: str, label: str) -> Made:
        label = _label(label)
        key, secret = secrets.token_hex(KEY_CHARS // 2), secrets.token_urlsafe(SECRET_BYTES)
        digest = await asyncio.to_thread(_digest, secret, secrets.token_bytes(16))
        now = self._clock.now()
        async with self._transaction() as conn:
            await store.insert(conn, key, user_id, label, digest, now)
        return Made(key, label, now, key + secret)

    async def list(self, user_id: str) -> list[Made]:
        async with self._transaction() as conn:
            rows = await store.of_user(conn, user_id)
        return [Made(row["id"], row["label"], row["created_at"]) for row in rows]

    async def revoke(self, user_id: str, key: str) -> None:
        async with self._transaction() as conn:
            if not is_identifier(key) or not await store.remove(conn, user_id, key):
                raise NotFound(f"no app password {key}")

    async def principal(
        self, username: str, password: str, address: str | None
    ) -> Principal | None:
        """Whose app password `password` is, if it is one of `username`'s; None otherwise."""
        fingerprint = hashlib.sha256(password.encode("utf-8", "surrogatepass")).hexdigest()
        key = password[:KEY_CHARS]
        row = None
        if is_identifier(key):  # others are not looked up (PostgreSQL refuses some characters)
            async with self._transaction() as conn:
                row = await store.with_user(conn, key)
        known = row is not None and row["username"] == username
        if known and row is not None and self._checked.get(fingerprint) == row["digest"]:
            self._checked.move_to_end(fingerprint)
            return self._principal(row)
        wait = await self._throttle.admit(username, address)
        if wait is not None:
            raise TooManyRequests(f"too many failed sign-ins; try again in {wait} s", wait)
        if not known or row is None:
            return None
        if not await asyncio.to_thread(_matches, password[KEY_CHARS:], row["digest"]):
            return None
        await self._throttle.succeeded(username, address)
        self._checked[fingerprint] = row["digest"]
        if len(self._checked) > CHECKED_CACHE_SIZE:
            self._checked.popitem(last=False)
        return self._principal(row)

    def _principal(self, row: RowMapping) -> Principal:
        """The holder, with no groups (those come with a token) and an admin only by name."""
        is_admin = row["issuer"] == self._home_issuer and row["username"] in self._admin_users
        return Principal(row["user_id"], row["username"], row["display_name"], (), is_admin)


def _label(label: object) -> str:
    if not isinstance(label, str) or len(label) > LABEL_MAX_CHARS:
        raise BadRequest(f"label must be text of at most {LABEL_MAX_CHARS} characters")
    bad = unsafe_character(label)
    if bad is not None:
        raise BadRequest(f"label must not hold {described(bad)}")
    return label


def _digest(secret: str, salt: bytes) -> str:
    derived = hashlib.scrypt(secret.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    encoded = (base64.b64encode(part).decode() for part in (salt, derived))
    return "$".join(["scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P), *encoded])


def _matches(secret: str, digest: str) -> bool:
    _scheme, n, r, p, salt, derived = digest.split("$")
    computed = hashlib.scrypt(
        secret.encode("utf-8", "surrogatepass"),
        salt=base64.b64decode(salt),
        n=int(n),
        r=int(r),
        p=int(p),
    )
    return hmac.compare_digest(computed, base64.b64decode(derived))
