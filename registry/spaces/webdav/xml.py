"""WebDAV's XML (RFC 4918): parsing request bodies safely and writing multistatus answers."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from registry.core.errors import BadRequest

DAV = "DAV:"
ET.register_namespace("d", DAV)
XML_MEDIA_TYPE = "application/xml; charset=utf-8"


def dav(local: str) -> str:
    """The Clark name of an element in the DAV: namespace."""
    return f"{{{DAV}}}{local}"


def parse(body: bytes) -> ET.Element | None:
    """The body's root element, None for an empty body; 400 for what is not XML (entities
    and DTDs are refused)."""
    if not body.strip():
        return None
    try:
        return fromstring(body)  # type: ignore[no-any-return]
    except (ET.ParseError, DefusedXmlException, ValueError) as exc:
        raise BadRequest(f"the request body is not well-formed XML: {exc}") from exc


def element(tag: str, text: str | None = None, *children: ET.Element) -> ET.Element:
    made = ET.Element(tag)
    made.text = text
    made.extend(children)
    return made


def status_line(status: int) -> str:
    return f"HTTP/1.1 {status} {_REASONS.get(status, '')}".rstrip()


def serialize(root: ET.Element) -> bytes:
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


_REASONS = {
    200: "OK",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    423: "Locked",
    424: "Failed Dependency",
}
