"""The WebDAV `If` header (RFC 4918 10.4): lists of conditions on lock tokens and entity
tags, untagged (about the request's resource) or tagged with the resource they are about."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from registry.core.errors import BadRequest

_TOKEN = re.compile(r"\s*(<[^>]*>|\[[^\]]*\]|\(|\)|Not\b)", re.IGNORECASE)


@dataclass(frozen=True)
class Condition:
    negated: bool
    token: str | None = None  # a state token (a lock token, or DAV:no-lock)
    etag: str | None = None


@dataclass(frozen=True)
class ConditionList:
    resource: str | None  # the tag (a URL) or None: the request's own resource
    conditions: tuple[Condition, ...]


def parse(header: str) -> list[ConditionList]:
    """The header's lists; 400 for one that does not follow the grammar."""
    lists: list[ConditionList] = []
    tag: str | None = None
    position, end = 0, len(header.rstrip())
    while position < end:
        match = _TOKEN.match(header, position)
        if match is None:
            raise BadRequest("the If header is malformed")
        word, position = match[1], match.end()
        if word.startswith("<"):
            tag = word[1:-1]
        elif word == "(":
            conditions, position = _conditions(header, position)
            lists.append(ConditionList(tag, conditions))
        else:
            raise BadRequest("the If header is malformed")
    if not lists:
        raise BadRequest("the If header has no condition list")
    return lists


def _conditions(header: str, position: int) -> tuple[tuple[Condition, ...], int]:
    conditions: list[Condition] = []
    negated = False
    while True:
        match = _TOKEN.match(header, position)
        if match is None:
            raise BadRequest("the If header has an unterminated list")
        word, position = match[1], match.end()
        if word == ")":
            if not conditions or negated:
                raise BadRequest("the If header has an empty condition")
            return tuple(conditions), position
        if word.lower() == "not" and not negated:
            negated = True
        elif word.startswith("<"):
            conditions.append(Condition(negated, token=word[1:-1]))
            negated = False
        elif word.startswith("["):
            conditions.append(Condition(negated, etag=_bare(word[1:-1])))
            negated = False
        else:
            raise BadRequest("the If header is malformed")


def tokens(lists: list[ConditionList]) -> set[str]:
    """Every state token the header names: those are the lock tokens the request submits."""
    return {c.token for each in lists for c in each.conditions if c.token is not None}


Holds = Callable[[str | None, Condition], Awaitable[bool]]


async def evaluate(lists: list[ConditionList], holds: Holds) -> bool:
    """Whether the header is true: one of its lists has every condition true. `holds` tells
    whether a (non-negated) condition is true of the resource a list is about."""
    for each in lists:
        for condition in each.conditions:
            if await holds(each.resource, condition) == condition.negated:
                break
        else:
            return True
    return False


def same_etag(a: str, b: str) -> bool:
    return _bare(a) == _bare(b)


def _bare(etag: str) -> str:
    etag = etag.strip()
    return etag.removeprefix("W/").strip('"')
