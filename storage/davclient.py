"""A small async WebDAV client on httpx2: PROPFIND, MKCOL, DELETE, and a walk of a collection
summed up as a Snapshot (an ETag and usage for the whole tree).

Answers are parsed by expat straight into ElementTree with any DOCTYPE refused: without a DTD no
entity can be declared, so none is ever expanded or fetched."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import cached_property
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit
from xml.etree import ElementTree as ET
from xml.parsers import expat

import httpx2

from storage.provider import PathNotFound, ProviderUnavailable, StorageError

DAV = "{DAV:}"
COLLECTION = f"{DAV}resourcetype/{DAV}collection"
PROPFIND_BODY = (
    b'<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop>'
    b"<D:resourcetype/><D:getetag/><D:getlastmodified/><D:getcontentlength/>"
    b"</D:prop></D:propfind>"
)
# Collections listed at once during a walk: enough to hide latency, few enough not to flood.
WALK_CONCURRENCY = 4
EPOCH = datetime.fromtimestamp(0, UTC)


@dataclass(frozen=True)
class Resource:
    """One member of a multistatus answer; `href` as the server wrote it."""

    href: str
    is_dir: bool
    etag: str
    size: int
    modified: datetime | None

    @cached_property  # read several times per resource by a walk and its Snapshot
    def path(self) -> str:
        return path_of(self.href)


# What of a resource counts for the ETag. Folders count by name only: their own modification time
# and ETag say nothing reliable about their contents, and some servers report "now" for them.
Signature = tuple[object, ...]


@dataclass(frozen=True)
class Snapshot:
    """A scanned tree: signatures by path below the top (`/`, `/a`, `/a/f.txt`)."""

    tree: Mapping[str, Signature]
    etag: str
    used: int
    modified: datetime

    @classmethod
    def of(cls, resources: Sequence[Resource], top: str) -> Snapshot:
        tree: dict[str, Signature] = {}
        used = 0
        modified = EPOCH
        for resource in resources:
            path = _below(resource.path, top)
            if path is None:
                continue
            if resource.is_dir:
                tree[path] = ("dir",)
            else:
                tree[path] = ("file", resource.etag, resource.size, str(resource.modified))
                used += resource.size
            if resource.modified and (path == "/" or not resource.is_dir):
                modified = max(modified, resource.modified)
        return cls(tree, digest(sorted(tree.items())), used, modified)

    def changed_since(self, old: Snapshot) -> tuple[str, ...]:
        paths = old.tree.keys() | self.tree.keys()
        return tuple(sorted(p for p in paths if old.tree.get(p) != self.tree.get(p))) or ("/",)


class DavClient:
    """WebDAV requests whose failures are storage errors: 404 is PathNotFound; no answer, a
    timeout or a 5xx is ProviderUnavailable; anything else unexpected is StorageError."""

    def __init__(self, http: httpx2.AsyncClient) -> None:
        self.http = http

    async def propfind(self, url: str, depth: str) -> list[Resource]:
        headers = {"Depth": depth, "Content-Type": "application/xml; charset=utf-8"}
        response = await self._request(
            "PROPFIND", url, {207}, headers=headers, content=PROPFIND_BODY
        )
        return parse_multistatus(response.content)

    async def mkcol(self, url: str) -> bool:
        """Make a collection; False if something already exists there (405)."""
        response = await self._request("MKCOL", url, {201, 405})
        return response.status_code == 201

    async def delete(self, url: str) -> None:
        await self._request("DELETE", url, {200, 204})

    async def walk(self, url: str) -> list[Resource]:
        """The collection at `url` and everything below it, by one PROPFIND depth 1 per
        collection: many servers refuse depth infinity, and it is costly for those that don't."""
        limit = asyncio.Semaphore(WALK_CONCURRENCY)

        async def members(collection: str) -> list[Resource]:
            async with limit:
                try:
                    return await self.propfind(collection, "1")
                except PathNotFound:
                    if collection == url:
                        raise
                    return []  # removed while we walked: the next walk will see it gone

        top = path_of(url)
        seen: set[str] = set()
        found: list[Resource] = []
        pending = [url]
        while pending:
            batches = await asyncio.gather(*(members(collection) for collection in pending))
            pending = []
            for resource in (r for batch in batches for r in batch):
                if resource.path in seen:
                    continue
                seen.add(resource.path)
                found.append(resource)
                if resource.is_dir and resource.path != top:
                    pending.append(urljoin(url, resource.href.rstrip("/") + "/"))
        if not any(r.path == top and r.is_dir for r in found):
            raise PathNotFound(url)
        return found

    async def _request(
        self, method: str, url: str, expected: Collection[int], **kwargs: Any
    ) -> httpx2.Response:
        try:
            response = await self.http.request(method, url, **kwargs)
        except httpx2.TransportError as exc:
            raise ProviderUnavailable(f"{method} {url}: {type(exc).__name__} {exc}") from exc
        status = response.status_code
        if status in expected:
            return response
        if status == 404:
            raise PathNotFound(url)
        if status >= 500:
            raise ProviderUnavailable(f"{method} {url}: HTTP {status}")
        raise StorageError(f"{method} {url}: HTTP {status}")


def parse_multistatus(body: bytes) -> list[Resource]:
    """The members of a 207 answer whose properties were found (propstat 200)."""
    resources = []
    for response in parse_xml(body).iter(f"{DAV}response"):
        href = (response.findtext(f"{DAV}href") or "").strip()
        props = [
            prop
            for propstat in response.findall(f"{DAV}propstat")
            if _is_ok(propstat.findtext(f"{DAV}status"))
            for prop in propstat.findall(f"{DAV}prop")
        ]
        if href and props:
            resources.append(
                Resource(
                    href=href,
                    is_dir=any(p.find(COLLECTION) is not None for p in props),
                    etag=_text(props, "getetag"),
                    size=_size(_text(props, "getcontentlength")),
                    modified=_http_date(_text(props, "getlastmodified")),
                )
            )
    return resources


def parse_xml(body: bytes) -> ET.Element:
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate(namespace_separator="}")

    def refuse(*_: object) -> None:
        raise StorageError("refused a WebDAV answer with a DOCTYPE")

    parser.StartDoctypeDeclHandler = refuse
    parser.StartElementHandler = lambda tag, attrs: builder.start(_clark(tag), attrs)
    parser.EndElementHandler = lambda tag: builder.end(_clark(tag))
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(body, True)
    except (expat.ExpatError, ValueError) as exc:
        raise StorageError(f"malformed WebDAV answer: {exc}") from exc
    return builder.close()


def _clark(tag: str) -> str:
    """expat writes `DAV:}href`; ElementTree's Clark notation is `{DAV:}href`."""
    return "{" + tag if "}" in tag else tag


def _text(props: list[ET.Element], name: str) -> str:
    return next((v.strip() for p in props if (v := p.findtext(f"{DAV}{name}"))), "")


def _size(value: str) -> int:
    return int(value) if value.isdigit() else 0


def _is_ok(status: str | None) -> bool:
    parts = (status or "").split()
    return len(parts) > 1 and parts[1] == "200"


def _http_date(value: str) -> datetime | None:
    try:
        return parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        return None


def _below(path: str, top: str) -> str | None:
    if path == top:
        return "/"
    prefix = top.rstrip("/") + "/"
    return path[len(prefix) - 1 :] if path.startswith(prefix) else None


def digest(items: object) -> str:
    """A strong ETag for anything with a stable repr."""
    return '"' + hashlib.sha256(repr(items).encode()).hexdigest()[:32] + '"'


def path_of(url: str) -> str:
    """The decoded path of a URL or href, without a trailing slash (except for `/` itself)."""
    return unquote(urlsplit(url).path).rstrip("/") or "/"
