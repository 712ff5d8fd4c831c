"""Who may see and act on a space: the one rule, in SQL and in memory, side by side.

Principals (a set of `PrincipalKey`s) hold a role in a space through its member rows that name
one of their keys and have not expired at the moment asked about; the best such role is theirs.
Administrators see and manage every space. Nothing else counts: not the kind of principal (every
type in `PRINCIPAL_TYPES` is matched alike) and not where the space's files are (a space a peer
holds is seen like any other).

The SQL serves the listing, the change feed and webhook matching; the in-memory check serves a
space as loaded with its members, and the SSE listeners' held-spaces maps.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import ColumnElement, and_, bindparam, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Select

from registry.access import roles
from registry.access.principal import PRINCIPAL_TYPES, Principal, PrincipalKey
from registry.core.models import Member, table

members = table(Member)

# The bind parameter of the moment in `spaces_held_bound` and `role_ends_bound`; those of the
# ids are `held_by_<type>`.
HELD_AT = "held_at"


# SQL, with the keys and the moment as values.


def naming(type_column: Any, id_column: Any, keys: Iterable[PrincipalKey]) -> ColumnElement[bool]:
    """Rows whose (type, id) columns name one of `keys` (member rows, the change audience)."""
    return _naming(type_column, id_column, _ids_by_type(keys))


def holding(keys: Iterable[PrincipalKey], now: datetime) -> ColumnElement[bool]:
    """The member rows through which `keys` hold a role at `now`."""
    return _holding(_ids_by_type(keys), now)


def spaces_held(keys: Iterable[PrincipalKey], now: datetime) -> Select[Any]:
    """The ids of the spaces in which `keys` hold a role at `now`."""
    return select(members.c.space_id).where(holding(keys, now))


async def held_spaces(
    conn: AsyncConnection, keys: Iterable[PrincipalKey], now: datetime
) -> dict[str, datetime | None]:
    """Space id to when the principals' role there ends (None: never), the latest of them."""
    rows = await conn.execute(
        select(members.c.space_id, members.c.expires_at).where(holding(keys, now))
    )
    held: dict[str, datetime | None] = {}
    for space_id, expires in rows:
        if space_id not in held:
            held[space_id] = expires
        else:
            prior = held[space_id]
            held[space_id] = None if prior is None or expires is None else max(prior, expires)
    return held


# SQL over bind parameters, for a statement built once per shape and cached (the listing).


def key_types(keys: Iterable[PrincipalKey]) -> tuple[str, ...]:
    """The kinds of principal among `keys`: the shape of their `spaces_held_bound` and
    `role_ends_bound`."""
    return tuple(_ids_by_type(keys))


def spaces_held_bound(types: tuple[str, ...]) -> Select[Any]:
    """`spaces_held` for keys of these types, given at execution by `bound_values`."""
    return select(members.c.space_id).where(_holding(_bound_ids(types), bindparam(HELD_AT)))


def naming_each(
    type_column: Any, id_column: Any, shape: tuple[tuple[str, int], ...]
) -> ColumnElement[bool]:
    """`naming` for keys of this shape (`each_key`), a parameter per id: a statement per shape
    spares SQLAlchemy the expanding parameters it would process again at every execution."""
    ids: dict[str, Any] = {
        kind: [bindparam(f"{kind}_{n}") for n in range(count)] for kind, count in shape
    }
    return _naming(type_column, id_column, ids)


def each_key(keys: Iterable[PrincipalKey]) -> tuple[tuple[tuple[str, int], ...], dict[str, Any]]:
    """The shape of `keys` for `naming_each` (each type with its number of ids) and the
    values it takes."""
    by_type = _ids_by_type(keys)
    shape = tuple((kind, len(ids)) for kind, ids in by_type.items())
    values = {f"{kind}_{n}": i for kind, ids in by_type.items() for n, i in enumerate(ids)}
    return shape, values


def role_ends_bound(types: tuple[str, ...]) -> Select[Any]:
    """When the first role that keys of these types hold at the bound moment ends (NULL: none
    ends), given at execution by `bound_values`."""
    held = _holding(_bound_ids(types), bindparam(HELD_AT))
    return select(func.min(members.c.expires_at)).where(held)


def _bound_ids(types: tuple[str, ...]) -> dict[str, Any]:
    return {t: bindparam(f"held_by_{t}", expanding=True) for t in types}


def bound_values(keys: Iterable[PrincipalKey], now: datetime) -> dict[str, Any]:
    """The values `spaces_held_bound` and `role_ends_bound` take for `keys` at `now`."""
    values: dict[str, Any] = {f"held_by_{t}": ids for t, ids in _ids_by_type(keys).items()}
    values[HELD_AT] = now
    return values


def _ids_by_type(keys: Iterable[PrincipalKey]) -> dict[str, list[str]]:
    """The ids among `keys` per type, types in `PRINCIPAL_TYPES` order (a stable shape)."""
    found: dict[str, list[str]] = {}
    for kind, principal_id in keys:
        if kind not in PRINCIPAL_TYPES:
            raise ValueError(f"unknown principal type {kind!r}")
        found.setdefault(kind, []).append(principal_id)
    return {kind: found[kind] for kind in PRINCIPAL_TYPES if kind in found}


def _naming(type_column: Any, id_column: Any, ids: Mapping[str, Any]) -> ColumnElement[bool]:
    return or_(false(), *(and_(type_column == t, id_column.in_(i)) for t, i in ids.items()))


def _holding(ids: Mapping[str, Any], now: Any) -> ColumnElement[bool]:
    return and_(
        _naming(members.c.principal_type, members.c.principal_id, ids),
        or_(members.c.expires_at.is_(None), members.c.expires_at > now),
    )


# In memory.


class MemberRow(Protocol):
    """A member of a space as loaded (the spaces wing's `MemberView`)."""

    @property
    def principal_type(self) -> str: ...
    @property
    def principal_id(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def expires_at(self) -> datetime | None: ...


def role_held(
    keys: frozenset[PrincipalKey], space_members: Iterable[MemberRow], now: datetime
) -> str | None:
    """The best role `keys` hold among a space's members at `now`; None: no role."""
    return roles.best(
        [
            m.role
            for m in space_members
            if (m.principal_type, m.principal_id) in keys and live(m.expires_at, now)
        ]
    )


def still_held(held: Mapping[str, datetime | None], space_id: str, now: datetime) -> bool:
    """Whether a held-spaces map (`held_spaces`) still grants `space_id` at `now`."""
    return space_id in held and live(held[space_id], now)


def live(expires_at: datetime | None, now: datetime) -> bool:
    """Whether a role (or anything) ending at `expires_at` (None: never) still holds at `now`."""
    return expires_at is None or expires_at > now


# A caller, administrators included.


def visible_to(principal: Principal) -> frozenset[PrincipalKey] | None:
    """The keys whose member rows show `principal` spaces; None: every space (administrators)."""
    return None if principal.is_admin else principal.keys


def sees(principal: Principal, space_members: Iterable[MemberRow], now: datetime) -> bool:
    return principal.is_admin or role_held(principal.keys, space_members, now) is not None


def manages(principal: Principal, space_members: Iterable[MemberRow], now: datetime) -> bool:
    role = role_held(principal.keys, space_members, now)
    return principal.is_admin or roles.at_least(role, roles.MANAGER)
