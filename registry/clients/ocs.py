"""The OCS envelope the clients parse: `{"ocs": {"meta", "data"}}` in JSON with
`format=json`, else in XML. v1 says success with status code 100, v2 with 200."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree

from starlette.requests import Request
from starlette.responses import Response

from registry.core.errors import BadRequest
from registry.core.http import query
from registry.core.responses import JSONResponse

FORMATS = frozenset({"json", "xml"})


def answer(request: Request, data: dict[str, Any]) -> Response:
    fmt = query(request).get("format", "xml")
    if fmt not in FORMATS:
        raise BadRequest("format must be json or xml")
    code = 100 if request.url.path.startswith("/ocs/v1.php/") else 200
    meta = {"status": "ok", "statuscode": code, "message": "OK"}
    if fmt == "json":
        return JSONResponse({"ocs": {"meta": meta, "data": data}})
    root = ElementTree.Element("ocs")
    _element(root, "meta", meta)
    _element(root, "data", data)
    body = ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)
    return Response(body, media_type="application/xml; charset=utf-8")


def _element(parent: ElementTree.Element, name: str, value: Any) -> None:
    """`value` as XML, the way ownCloud writes it: a list's items as `<element>`, booleans as
    1 or empty."""
    node = ElementTree.SubElement(parent, name)
    if isinstance(value, dict):
        for key, item in value.items():
            _element(node, key, item)
    elif isinstance(value, list):
        for item in value:
            _element(node, "element", item)
    elif isinstance(value, bool):
        node.text = "1" if value else ""
    elif value is not None:
        node.text = str(value)
