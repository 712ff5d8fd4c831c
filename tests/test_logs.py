"""Structured logs: one JSON object a line with the request's id and the event's fields, and
credentials masked, in the format chosen by `log_format`."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx2
import orjson
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from registry.runtime.logs import MASK, TEXT_FORMAT, JsonFormatter, RedactingFormatter
from registry.runtime.middleware import RequestContext
from tests.processes import RegistryProcess
from tests.servers import free_port, serve

SECRET = "eyJhbGciOi.secret-part.signature"


@pytest.fixture
def captured() -> Iterator[tuple[io.StringIO, logging.Handler]]:
    """What the logger `test.logs` writes, through a handler whose format a test picks."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("test.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield stream, handler
    finally:
        logger.removeHandler(handler)


async def noting(request: Request) -> Response:
    logging.getLogger("test.logs").warning(
        "refused Authorization: Bearer %s at %s",
        SECRET,
        request.url.path,
        extra={"space_id": "space-1", "access_token": SECRET},
    )
    return PlainTextResponse("noted")


def served() -> Starlette:
    return Starlette(routes=[Route("/note", noting)], middleware=[Middleware(RequestContext)])


async def test_json_lines_carry_the_request_id_and_fields_without_secrets(captured) -> None:
    stream, handler = captured
    handler.setFormatter(JsonFormatter())
    with serve(served(), free_port()) as url:
        async with httpx2.AsyncClient(base_url=url) as client:
            response = await client.get("/note", headers={"X-Request-Id": "req-42"})
            assert response.status_code == 200
            await client.get("/note")  # a second request, with an id of its own
    first, second = (orjson.loads(line) for line in stream.getvalue().splitlines())
    assert first["request_id"] == "req-42"
    assert second["request_id"] not in {"", "req-42"}
    assert first["level"] == "WARNING"
    assert first["logger"] == "test.logs"
    assert first["message"] == f"refused Authorization: Bearer {MASK} at /note"
    assert first["space_id"] == "space-1"
    assert first["access_token"] == MASK
    assert SECRET not in stream.getvalue()


def test_text_logs_mask_credentials_too(captured) -> None:
    stream, handler = captured
    handler.setFormatter(RedactingFormatter(TEXT_FORMAT))
    logging.getLogger("test.logs").warning("callback https://x.test/cb?token=%s failed", SECRET)
    assert stream.getvalue().rstrip().endswith(f"callback https://x.test/cb?token={MASK} failed")


def test_json_logs_of_a_served_registry_are_one_event_a_line(
    tmp_path: Path, idp_key_dir: Path
) -> None:
    registry = RegistryProcess(
        tmp_path,
        free_port(),
        idp_key_dir,
        SPACEREG_LOG_FORMAT="json",
        SPACEREG_METRICS_TOKEN=SECRET,
    )
    registry.start()
    try:
        metrics = httpx2.get(
            f"{registry.url}/metrics", headers={"Authorization": f"Bearer {SECRET}"}, timeout=10
        )
        assert metrics.status_code == 200
    finally:
        registry.stop()
    events = [orjson.loads(line) for line in registry.output().splitlines() if line.strip()]
    assert {"time", "level", "logger", "message", "request_id"} <= events[0].keys()
    assert any(event["message"].startswith("Application startup complete") for event in events)
    assert SECRET not in registry.output()
