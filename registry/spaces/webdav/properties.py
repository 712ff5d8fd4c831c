"""Dead properties (RFC 4918 4, 9.2): PROPPATCH stores them in the registry's database, not
in the storage, so they are the same through every replica and on every kind of provider
(a remote WebDAV server or provider service need not keep them); they follow MOVE and COPY
and go with DELETE. Properties in the DAV: namespace are the storage's live ones: protected."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.responses import Response

from registry.core.errors import BadRequest, InsufficientStorage, NotFound
from registry.core.http import read_body
from registry.spaces.webdav import property_store
from registry.spaces.webdav.target import DavTarget
from registry.spaces.webdav.xml import (
    DAV,
    XML_MEDIA_TYPE,
    dav,
    element,
    parse,
    serialize,
    status_line,
)

MAX_PER_RESOURCE = 256


class DeadProperties:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def proppatch(self, target: DavTarget) -> Response:
        """Set and remove in document order, all or nothing (RFC 4918 9.2)."""
        update = parse(await read_body(target.request))
        if update is None or update.tag != dav("propertyupdate"):
            raise BadRequest("a PROPPATCH body is a DAV:propertyupdate")
        if await target.etag(target.path) is None:
            raise NotFound(f"nothing at {target.path}")
        changes: list[tuple[str, ET.Element]] = []
        for action in update:
            if action.tag not in {dav("set"), dav("remove")}:
                raise BadRequest("DAV:propertyupdate holds DAV:set and DAV:remove")
            for prop in action.findall(dav("prop")):
                changes += [(action.tag, item) for item in prop]
        protected = {item.tag for _, item in changes if item.tag.startswith(f"{{{DAV}}}")}
        if not protected:
            async with self._engine.begin() as conn:  # all or none: an error rolls back
                for kind, item in changes:
                    if kind == dav("set"):
                        value = ET.tostring(item, encoding="unicode")
                        await property_store.put(
                            conn, target.space_id, target.path, item.tag, value
                        )
                    else:
                        await property_store.remove(conn, target.space_id, target.path, item.tag)
                held = await property_store.count(conn, target.space_id, target.path)
                if held > MAX_PER_RESOURCE:
                    raise InsufficientStorage(
                        f"a resource holds at most {MAX_PER_RESOURCE} dead properties"
                    )
        statuses: dict[int, list[str]] = {}
        for _, item in changes:
            status = (403 if item.tag in protected else 424) if protected else 200
            statuses.setdefault(status, []).append(item.tag)
        return multistatus_of(target, statuses)

    async def listed(self, space_id: str, path: str, depth: str) -> dict[str, dict[str, str]]:
        """path -> name -> value for the resources a PROPFIND of `path` at `depth` lists."""
        async with self._engine.connect() as conn:
            return await property_store.listed(conn, space_id, path, depth)

    async def deleted(self, space_id: str, path: str) -> None:
        async with self._engine.begin() as conn:
            await property_store.remove_below(conn, space_id, path)

    async def copied(
        self, space_id: str, source: str, target: str, *, subtree: bool, keep: bool
    ) -> None:
        async with self._engine.begin() as conn:
            await property_store.copy(conn, space_id, source, target, subtree=subtree, keep=keep)


def multistatus_of(target: DavTarget, statuses: dict[int, list[str]]) -> Response:
    """One resource's multistatus: a propstat per status, naming its properties."""
    propstats = [
        element(
            dav("propstat"),
            None,
            element(dav("prop"), None, *(element(name) for name in dict.fromkeys(names))),
            element(dav("status"), status_line(status)),
        )
        for status, names in sorted(statuses.items())
    ]
    response = element(
        dav("response"), None, element(dav("href"), target.href(target.path)), *propstats
    )
    body = element(dav("multistatus"), None, response)
    return Response(serialize(body), 207, media_type=XML_MEDIA_TYPE)
