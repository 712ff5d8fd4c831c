"""Who is calling: the authenticated user as the registry sees them, the keys by which member
rows name principals, and how every wing asks for a caller (`Authenticate`, implemented by the
auth wing and handed to the routes)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import NamedTuple

from starlette.requests import HTTPConnection

USER = "user"  # one of our users, by our user id
GROUP = "group"  # a group, by its name in the token's groups claim
REMOTE = "remote"  # a user of a peer registry, by address: marie@paris.test
# Every kind of principal a member row may name; a new kind is one line here (its name must
# fit `members.principal_type`, 8 characters). `registry.access.rule` matches each alike.
PRINCIPAL_TYPES = (USER, GROUP, REMOTE)


class PrincipalKey(NamedTuple):
    """A principal as a member row names it: (`principal_type`, `principal_id`)."""

    type: str
    id: str


@dataclass(frozen=True)
class Principal:
    user_id: str
    username: str
    display_name: str
    groups: tuple[str, ...]
    is_admin: bool
    # A peer's user acting through a share's access token (`marie@paris.test`): then that
    # address is their one key, and `user_id` is empty.
    remote: str | None = None

    @property
    def keys(self) -> frozenset[PrincipalKey]:
        if self.remote is not None:
            return frozenset([PrincipalKey(REMOTE, self.remote)])
        return principal_keys(self.user_id, self.groups)


def principal_keys(user_id: str, groups: tuple[str, ...]) -> frozenset[PrincipalKey]:
    """The keys of one of our users and of the groups their token names."""
    return frozenset([PrincipalKey(USER, user_id), *(PrincipalKey(GROUP, g) for g in groups)])


Authenticate = Callable[[HTTPConnection], Awaitable[Principal]]
