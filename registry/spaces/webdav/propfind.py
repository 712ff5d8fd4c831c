"""PROPFIND answers with what the registry keeps beside the storage: the dead properties and
the lock properties (`DAV:lockdiscovery`, `DAV:supportedlock`). The back end answers first;
its multistatus is completed here, and only when the space has something to add or the
request asks for the lock properties, so a plain listing streams through untouched."""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from registry.spaces.webdav.lock_store import Lock
from registry.spaces.webdav.locking import lockdiscovery, supportedlock
from registry.spaces.webdav.target import DavTarget
from registry.spaces.webdav.xml import DAV, dav, element, parse

LOCK_PROPERTIES = frozenset({dav("lockdiscovery"), dav("supportedlock")})
_PREFIX = rb"(?:[A-Za-z_][\w.-]*:)?"  # of an element's name, if it has one
_MULTISTATUS = re.compile(rb"<(" + _PREFIX + rb")multistatus\b[^>]*>")
_RESPONSE = re.compile(rb"<" + _PREFIX + rb"response[\s>/]")
_HREF = re.compile(rb"<" + _PREFIX + rb"href(?:\s[^>]*)?>([^<]*)<")


@dataclass(frozen=True)
class Asked:
    """What a PROPFIND asks for: `allprop`, `propname`, or the properties named."""

    mode: str
    names: frozenset[str] = frozenset()

    @classmethod
    def of(cls, body: bytes) -> Asked:
        root = parse(body)
        if root is None or root.find(dav("allprop")) is not None:
            return cls("allprop")
        if root.find(dav("propname")) is not None:
            return cls("propname")
        prop = root.find(dav("prop"))
        return cls("prop", frozenset(child.tag for child in (prop if prop is not None else [])))

    def wants_dead(self) -> bool:
        return self.mode != "prop" or any(not n.startswith(f"{{{DAV}}}") for n in self.names)

    def wants_locks(self) -> bool:
        return self.mode != "prop" or bool(self.names & LOCK_PROPERTIES)


def complete(
    target: DavTarget,
    multistatus: bytes,
    asked: Asked,
    dead: dict[str, dict[str, str]],
    locks: list[Lock],
) -> bytes:
    """The back end's multistatus with our properties put in each response. Only the
    responses that get something are parsed and written again; the others (in a large
    folder, nearly all) are passed on as they came."""
    start = _MULTISTATUS.search(multistatus)
    if start is None:
        return multistatus
    close = b"</" + start[1] + b"multistatus>"
    end = multistatus.rfind(close)
    cuts = [m.start() for m in _RESPONSE.finditer(multistatus, start.end(), max(end, 0))]
    if end < 0 or not cuts:
        return multistatus
    pieces = [multistatus[: cuts[0]]]
    for begin, stop in zip(cuts, [*cuts[1:], end], strict=True):
        response = multistatus[begin:stop]
        ours = _ours(target, _path(target, response), asked, dead, locks)
        if ours:
            root = parse(start[0] + response + close)
            if root is not None and len(root):
                _place(root[0], ours, asked)
                response = ET.tostring(root[0], encoding="unicode").encode()
        pieces.append(response)
    pieces.append(multistatus[end:])
    return b"".join(pieces)


def _path(target: DavTarget, response: bytes) -> str | None:
    href = _HREF.search(response)
    return None if href is None else target.path_of(html.unescape(href[1].decode()))


def _ours(
    target: DavTarget,
    path: str | None,
    asked: Asked,
    dead: dict[str, dict[str, str]],
    locks: list[Lock],
) -> dict[str, ET.Element]:
    """Our properties of `path` that the request asks for."""
    if path is None:
        return {}
    ours = {name: ET.fromstring(value) for name, value in dead.get(path, {}).items()}
    if asked.wants_locks():
        ours[dav("lockdiscovery")] = lockdiscovery(
            target, [lock for lock in locks if lock.covers(path)]
        )
        ours[dav("supportedlock")] = supportedlock()
    if asked.mode == "prop":
        ours = {name: value for name, value in ours.items() if name in asked.names}
    return ours


def _place(response: ET.Element, ours: dict[str, ET.Element], asked: Asked) -> None:
    found = _propstat(response, 200)
    if asked.mode == "prop":
        names = asked.names & ours.keys()
        for propstat in response.findall(dav("propstat")):
            for prop in propstat.findall(dav("prop")):
                for item in [item for item in prop if item.tag in names]:
                    prop.remove(item)
        found.extend(ours[name] for name in names)
    else:
        present = {item.tag for item in found}
        for name, value in ours.items():
            if name not in present:
                found.append(value if asked.mode == "allprop" else element(name))
    for propstat in response.findall(dav("propstat")):
        if not any(len(prop) for prop in propstat.findall(dav("prop"))):
            response.remove(propstat)


def _propstat(response: ET.Element, status: int) -> ET.Element:
    """The `prop` of the response's propstat with `status`, made if there is none."""
    for propstat in response.findall(dav("propstat")):
        if f" {status} " in f"{propstat.findtext(dav('status'), '')} ":
            prop = propstat.find(dav("prop"))
            if prop is not None:
                return prop
    prop = element(dav("prop"))
    response.append(
        element(dav("propstat"), None, prop, element(dav("status"), f"HTTP/1.1 {status} OK"))
    )
    return prop
