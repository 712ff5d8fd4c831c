"""Who is calling: the authenticated user as the registry sees them, and how every wing asks
for one (`Authenticate`, implemented by the auth wing and handed to the routes)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import HTTPConnection

PrincipalKey = tuple[str, str]  # ("user", user id) or ("group", group name)


@dataclass(frozen=True)
class Principal:
    user_id: str
    username: str
    display_name: str
    groups: tuple[str, ...]
    is_admin: bool

    @property
    def keys(self) -> frozenset[PrincipalKey]:
        return principal_keys(self.user_id, self.groups)


def principal_keys(user_id: str, groups: tuple[str, ...]) -> frozenset[PrincipalKey]:
    return frozenset([("user", user_id), *(("group", group) for group in groups)])


Authenticate = Callable[[HTTPConnection], Awaitable[Principal]]
