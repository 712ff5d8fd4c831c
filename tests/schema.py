"""Check API responses against our OpenAPI document (registry/openapi.yaml) and against the
LibreGraph shapes ownCloud clients read (tests/specs/libregraph-v1.0.yaml).

Schemas are validated with openapi-schema-validator's OAS 3.0 dialect. A schema is validated as
a root that also carries its document's `components`, so `#/components/...` references resolve.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import httpx2
import yaml
from jsonschema.exceptions import best_match
from openapi_schema_validator import OAS30Validator, oas30_format_checker

import registry

OPENAPI_FILE = Path(registry.__file__).parent / "openapi.yaml"
LIBREGRAPH_FILE = Path(__file__).parent / "specs" / "libregraph-v1.0.yaml"


@cache
def load_document(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())
    assert isinstance(document, dict), f"{path} is not a YAML mapping"
    return document


def openapi_document() -> dict[str, Any]:
    return load_document(OPENAPI_FILE)


@cache
def path_pattern(template: str) -> re.Pattern[str]:
    """What the request paths of a path template look like: `{id}` stands for one segment,
    `{path}` for a path below (slashes included, maybe empty)."""
    escaped = re.escape(template).replace(r"\{path\}", ".*")
    return re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/]+", escaped))


def resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """Follow a local `$ref` (as in a response object) to what it names."""
    while "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), f"only local references are supported: {ref}"
        node = document
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


@cache
def _validator(path: Path, pointer: tuple[str, ...], extra_required: tuple[str, ...]) -> Any:
    """The validator of the schema at `pointer` in the document at `path`."""
    document = load_document(path)
    schema: Any = document
    for part in pointer:
        schema = schema[part]
    if extra_required:
        schema = {"allOf": [schema, {"required": list(extra_required)}]}
    root = {**schema, "components": document.get("components", {})}
    return OAS30Validator(root, format_checker=oas30_format_checker)


def _check(
    path: Path, pointer: tuple[str, ...], instance: Any, what: str, required: tuple[str, ...] = ()
) -> None:
    error = best_match(_validator(path, pointer, required).iter_errors(instance))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        raise AssertionError(f"{what}: at {where}: {error.message}")


def assert_matches_openapi(response: httpx2.Response, path_template: str, method: str) -> None:
    """The response is one our OpenAPI document describes for this operation: its status is
    documented, its media type is listed, and a JSON body matches the schema."""
    document = openapi_document()
    method = method.lower()
    operation = document["paths"].get(path_template, {}).get(method)
    assert operation is not None, f"{method.upper()} {path_template} is not in {OPENAPI_FILE.name}"
    _assert_request_matches(response, path_template, method)
    status = str(response.status_code)
    responses = operation["responses"]
    key = status if status in responses else f"{status[0]}XX"
    what = f"{method.upper()} {path_template} -> {status}"
    assert key in responses, f"{what} is not documented (documented: {sorted(responses)})"
    described = resolve(document, responses[key])
    for name, header in described.get("headers", {}).items():
        if resolve(document, header).get("required"):
            assert name in response.headers, f"{what}: required header {name} missing"
    content = described.get("content")
    if not content:
        assert response.content == b"", f"{what} is documented without a body: {response.text!r}"
        return
    media_type = response.headers.get("content-type", "").split(";")[0].strip()
    listed = media_type in content or "*/*" in content  # */*: a file, of its own type
    assert listed, f"{what}: content type {media_type!r} not in {sorted(content)}"
    if media_type != "application/json" and not media_type.endswith("+json"):
        return  # HTML pages; JSON and its +json kinds (JRD, JWK set) are checked
    pointer: tuple[str, ...] = ("paths", path_template, method, "responses", key)
    if "$ref" in responses[key]:
        pointer = tuple(responses[key]["$ref"][2:].split("/"))
    pointer += ("content", media_type, "schema")
    _check(OPENAPI_FILE, pointer, response.json(), what)


def _assert_request_matches(response: httpx2.Response, path_template: str, method: str) -> None:
    try:
        request = response.request
    except RuntimeError:  # a response built by hand has no request
        return
    assert path_pattern(path_template).fullmatch(request.url.path), (
        f"the response is for {request.url.path}, not {path_template}"
    )
    assert request.method.lower() == method, f"the response is for {request.method}, not {method}"


def assert_sse_event(fields: dict[str, Any]) -> None:
    """An event of `/api/v1/events` (its `id`, `event` and parsed `data`) is what the
    document's `sseEvent` schema says, its data a `change` of its type."""
    _check(OPENAPI_FILE, ("components", "schemas", "sseEvent"), fields, "SSE event")


def assert_libregraph_drive(obj: Any) -> None:
    """`obj` is a drive as LibreGraph defines it (components/schemas/drive)."""
    _check(LIBREGRAPH_FILE, ("components", "schemas", "drive"), obj, "LibreGraph drive")


def assert_libregraph_drive_list(obj: Any) -> None:
    """`obj` is what LibreGraph's `GET /v1.0/me/drives` answers: `{"value": [drive, ...]}`.

    LibreGraph's inline schema leaves `value` optional; every real collection has it, so it is
    required here."""
    # Served at /graph/v1.0/me/drives: the document's servers end in /graph.
    pointer = (
        "paths",
        "/v1.0/me/drives",
        "get",
        "responses",
        "200",
        "content",
        "application/json",
        "schema",
    )
    _check(LIBREGRAPH_FILE, pointer, obj, "LibreGraph drive list", required=("value",))


def template_for(path: str) -> str | None:
    """The path template of our document that `path` falls under (literal segments win)."""
    best: tuple[int, str] | None = None
    for template in openapi_document()["paths"]:
        if path_pattern(template).fullmatch(path):
            literal = len(re.sub(r"\{[^}]+\}", "", template))
            if best is None or literal > best[0]:
                best = (literal, template)
    return None if best is None else best[1]


_DRIVE_PATH = re.compile(r"^/graph/v1(?:\.0|beta1)/(?:me/drive|drives/[^/]+)$")
_DRIVES_PATH = re.compile(r"^/graph/v1(?:\.0|beta1)/(?:me/)?drives$")


def assert_documented(response: httpx2.Response) -> None:
    """Whatever the request was: the answer is what our document promises, drives are LibreGraph
    drives, and a path we do not serve answers with the error schema."""
    path, method = response.request.url.path, response.request.method
    template = template_for(path)
    if template is None or method.lower() not in openapi_document()["paths"][template]:
        assert response.status_code in (404, 405), f"{method} {path} is not documented"
        _check(OPENAPI_FILE, ("components", "schemas", "error"), response.json(), "error")
        return
    assert_matches_openapi(response, template, method)
    if response.status_code in (200, 201) and method in ("GET", "POST", "PATCH"):
        if _DRIVE_PATH.match(path):
            assert_libregraph_drive(response.json())
        elif _DRIVES_PATH.match(path) and method == "GET":
            assert_libregraph_drive_list(response.json())


async def check_response(response: httpx2.Response) -> None:
    """An httpx2 response hook: every response a test client receives is checked (but for
    event streams, which never end: their errors are checked, not their endless body)."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        assert response.status_code == 200
        return
    if response.request.url.path.startswith(("/dav/", "/remote.php/")):
        return  # WebDAV (RFC 4918), not the JSON API that openapi.yaml describes
    await response.aread()
    assert_documented(response)
