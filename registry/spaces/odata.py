"""The small part of OData query options the drives API supports.

`$filter`: `driveType eq 'x'` and `id eq 'x'`, joined by `and` or by `or` (not both).
`$orderby`: `name` or `lastModifiedDateTime`, optionally `asc` or `desc`.
Well-formed OData we do not support raises `NotSupported` (501), anything else `BadRequest`.
A filter holds at most `MAX_CONDITIONS` conditions (SQLite refuses expressions nested 1,000
deep, and no client needs more than a page of ids), and its values no control characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import pairwise

from registry.core.errors import BadRequest, NotSupported
from registry.core.text import described, unsafe_character

MAX_CONDITIONS = 100
FILTER_FIELDS = {"driveType": "drive_type", "id": "id"}
ORDER_FIELDS = {"name": "name", "lastModifiedDateTime": "updated_at"}
_OPERATORS = {"eq", "ne", "gt", "ge", "lt", "le", "has", "in"}
_FUNCTIONS = {"contains", "startswith", "endswith", "any", "all", "not"}
_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)|(?P<word>[A-Za-z_][\w/.@]*)"
    r"|(?P<sym>[(),:]))"
)


@dataclass(frozen=True)
class Condition:
    column: str
    value: str


@dataclass(frozen=True)
class Filter:
    conditions: tuple[Condition, ...]
    any_of: bool  # True: joined by `or`; False: joined by `and`


@dataclass(frozen=True)
class OrderBy:
    column: str
    descending: bool


# Which page of a listing: its `$filter`, `$orderby` and the offset its `$skiptoken` names.
PageQuery = tuple[Filter | None, OrderBy | None, int]


def parse_filter(text: str | None) -> Filter | None:
    if text is None or not text.strip():
        return None
    tokens = _tokenize(text)
    for (kind, word), following in pairwise(tokens):
        if kind == "word" and word.lower() in _FUNCTIONS and following == ("sym", "("):
            raise NotSupported(f"$filter function {word!r} is not supported")
    if ("sym", "(") in tokens:
        raise NotSupported("$filter grouping with parentheses is not supported")
    conditions: list[Condition] = []
    joins: set[str] = set()
    position = 0
    while True:
        if len(tokens) - position < 3:
            raise BadRequest(f"malformed $filter: {text!r}")
        field_kind, field = tokens[position]
        op_kind, op = tokens[position + 1]
        value_kind, value = tokens[position + 2]
        if field_kind != "word" or op_kind != "word":
            raise BadRequest(f"malformed $filter: {text!r}")
        if op not in _OPERATORS:
            raise BadRequest(f"malformed $filter: unknown operator {op!r}")
        if op != "eq":
            raise NotSupported(f"$filter operator {op!r} is not supported")
        if field not in FILTER_FIELDS:
            raise NotSupported(f"$filter on {field!r} is not supported")
        if value_kind != "str":
            raise BadRequest(f"malformed $filter: expected a quoted string after {field} eq")
        if len(conditions) == MAX_CONDITIONS:
            raise BadRequest(f"$filter has more than {MAX_CONDITIONS} conditions")
        text_value = value[1:-1].replace("''", "'")
        if (unsafe := unsafe_character(text_value)) is not None:
            raise BadRequest(f"$filter value holds a control character ({described(unsafe)})")
        conditions.append(Condition(FILTER_FIELDS[field], text_value))
        position += 3
        if position == len(tokens):
            break
        join_kind, join = tokens[position]
        if join_kind != "word" or join not in {"and", "or"}:
            raise BadRequest(f"malformed $filter near {join!r}")
        joins.add(join)
        position += 1
    if len(joins) > 1:
        raise NotSupported("$filter mixing 'and' and 'or' is not supported")
    return Filter(tuple(conditions), any_of=joins == {"or"})


def parse_orderby(text: str | None) -> OrderBy | None:
    if text is None or not text.strip():
        return None
    if "," in text:
        raise NotSupported("$orderby on more than one property is not supported")
    parts = text.split()
    if len(parts) > 2:
        raise BadRequest(f"malformed $orderby: {text!r}")
    field = parts[0]
    direction = parts[1].lower() if len(parts) == 2 else "asc"
    if direction not in {"asc", "desc"}:
        raise BadRequest(f"malformed $orderby: direction {parts[1]!r}")
    if field not in ORDER_FIELDS:
        if re.fullmatch(r"[A-Za-z_][\w/]*", field):
            raise NotSupported(f"$orderby on {field!r} is not supported")
        raise BadRequest(f"malformed $orderby: {text!r}")
    return OrderBy(ORDER_FIELDS[field], descending=direction == "desc")


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            if text[position:].strip() == "":
                break
            raise BadRequest(f"malformed $filter at {text[position:]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens
