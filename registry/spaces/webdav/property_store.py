"""The SQL of dead properties: per space, path and name, the property element as XML."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from registry.core.models import DavProperty, table
from registry.spaces.webdav.paths import moved

PROPERTIES = table(DavProperty)


def _at_or_below(space_id: str, path: str) -> ColumnElement[bool]:
    inside = PROPERTIES.c.path.startswith(path.rstrip("/") + "/", autoescape=True)
    return (PROPERTIES.c.space_id == space_id) & or_(PROPERTIES.c.path == path, inside)


async def listed(
    conn: AsyncConnection, space_id: str, path: str, depth: str
) -> dict[str, dict[str, str]]:
    """path -> name -> value, for what a PROPFIND of `path` at `depth` lists (`0`: the path,
    `1`: and its members, else everything below it) that has dead properties."""
    where: ColumnElement[bool] = (PROPERTIES.c.space_id == space_id) & (PROPERTIES.c.path == path)
    if depth != "0":
        members = _at_or_below(space_id, path)
        if depth == "1":  # below it, but no deeper than one name
            deeper = _escaped(path.rstrip("/") + "/") + "%/%"
            members = members & ~PROPERTIES.c.path.like(deeper, escape="\\")
        where = members
    rows = await conn.execute(
        select(PROPERTIES.c.path, PROPERTIES.c.name, PROPERTIES.c.value).where(where)
    )
    found: dict[str, dict[str, str]] = {}
    for each, name, value in rows:
        found.setdefault(each, {})[name] = value
    return found


def _escaped(text: str) -> str:
    """`text` matched literally in a LIKE pattern with the escape character `\\`."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def count(conn: AsyncConnection, space_id: str, path: str) -> int:
    found = await conn.execute(
        select(func.count()).where(PROPERTIES.c.space_id == space_id, PROPERTIES.c.path == path)
    )
    return int(found.scalar_one())


async def put(conn: AsyncConnection, space_id: str, path: str, name: str, value: str) -> None:
    await remove(conn, space_id, path, name)
    await conn.execute(
        insert(PROPERTIES).values(space_id=space_id, path=path, name=name, value=value)
    )


async def remove(conn: AsyncConnection, space_id: str, path: str, name: str) -> None:
    await conn.execute(
        delete(PROPERTIES).where(
            PROPERTIES.c.space_id == space_id,
            PROPERTIES.c.path == path,
            PROPERTIES.c.name == name,
        )
    )


async def remove_below(conn: AsyncConnection, space_id: str, path: str) -> None:
    await conn.execute(delete(PROPERTIES).where(_at_or_below(space_id, path)))


async def copy(
    conn: AsyncConnection, space_id: str, source: str, target: str, *, subtree: bool, keep: bool
) -> None:
    """Give `target` (and what is below it) the properties of `source`, replacing its own;
    `keep` False moves them instead of copying."""
    where = (
        _at_or_below(space_id, source)
        if subtree
        else ((PROPERTIES.c.space_id == space_id) & (PROPERTIES.c.path == source))
    )
    rows = (
        await conn.execute(
            select(PROPERTIES.c.path, PROPERTIES.c.name, PROPERTIES.c.value).where(where)
        )
    ).all()
    await remove_below(conn, space_id, target)
    if not keep:
        await remove_below(conn, space_id, source)
    values: Iterable[dict[str, str]] = (
        {"space_id": space_id, "path": moved(path, source, target), "name": name, "value": value}
        for path, name, value in rows
    )
    batch = list(values)
    if batch:
        await conn.execute(insert(PROPERTIES), batch)
