"""Demo users of the embedded IdP: from configuration, or generated with random passwords
that are printed once, at the first start."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import orjson

from registry.auth.idp.keys import write_secret

DEMO_USERS = (
    ("einstein", "Albert Einstein", ("physics-lovers", "sailing-lovers")),
    ("marie", "Marie Curie", ("physics-lovers", "radium-lovers")),
    ("richard", "Richard Feynman", ("physics-lovers", "quantum-lovers")),
    ("admin", "Administrator", ()),
)
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
_NO_USERS_SALT = bytes(16)


@dataclass(frozen=True)
class DemoUser:
    """A user of the embedded IdP as configured (`[[idp_users]]`)."""

    username: str
    password: str
    display_name: str
    email: str
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class IdpUser:
    username: str
    display_name: str
    email: str
    groups: tuple[str, ...]
    password_hash: str

    def check_password(self, password: str) -> bool:
        salt_hex, digest_hex = self.password_hash.split("$", 1)
        digest = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt_hex), **_SCRYPT)
        return hmac.compare_digest(digest.hex(), digest_hex)

    def profile(self) -> dict[str, Any]:
        return {
            "preferred_username": self.username,
            "name": self.display_name,
            "email": self.email,
            "groups": list(self.groups),
        }


def sign_in(users: Mapping[str, IdpUser], username: str, password: str) -> IdpUser | None:
    """The user with this username and password, if any. It costs one scrypt whether or not
    the username exists, so that how long it takes does not tell."""
    user = users.get(username)
    if user is None:
        hashlib.scrypt(password.encode(), salt=_NO_USERS_SALT, **_SCRYPT)
        return None
    return user if user.check_password(password) else None


@cache
def _configured_hash(password: str) -> str:
    """Configured passwords already stand in plain text in the configuration: hash each once per
    process, not at every start of an app (scrypt is deliberately slow)."""
    return hash_password(password)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    return f"{salt.hex()}${hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT).hex()}"


def load_users(
    directory: Path, configured: Sequence[DemoUser], announce: Callable[[str], None]
) -> dict[str, IdpUser]:
    """Users from the configuration win; otherwise the demo users kept in `directory`."""
    if configured:
        return {
            u.username: IdpUser(
                u.username, u.display_name, u.email, u.groups, _configured_hash(u.password)
            )
            for u in configured
        }
    path = directory / "users.json"
    if path.exists():
        stored = orjson.loads(path.read_bytes())
        return {u["username"]: IdpUser(**{**u, "groups": tuple(u["groups"])}) for u in stored}
    users: dict[str, IdpUser] = {}
    lines = []
    for username, display_name, groups in DEMO_USERS:
        password = secrets.token_urlsafe(12)
        users[username] = IdpUser(
            username, display_name, f"{username}@example.org", groups, hash_password(password)
        )
        lines.append(f"  {username:<10} {password}")
    write_secret(path, [{**u.__dict__, "groups": list(u.groups)} for u in users.values()])
    announce(f"Embedded IdP demo users (shown once; stored hashed in {path}):\n" + "\n".join(lines))
    return users
