"""An unexpected exception answers 500 with the error body, and the client's keep-alive
connection stays usable for its next request (common/server_errors.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tests.conftest import registry_settings, start_registry_context
from tests.servers import free_port


async def fails(request: Request) -> Response:
    raise RuntimeError("a bug")


async def fails_midway(request: Request) -> Response:
    async def body() -> AsyncIterator[bytes]:
        yield b"a first part"
        raise RuntimeError("a bug after the answer began")

    return StreamingResponse(body())


@pytest.fixture
def url(tmp_path: Path, idp_key_dir: Path) -> Iterator[str]:
    """A registry with two more routes that fail."""
    settings = registry_settings(tmp_path / "data", free_port())
    app, server = start_registry_context(settings, idp_key_dir)
    app.router.routes += [Route("/fails", fails), Route("/fails-midway", fails_midway)]
    with server as base_url:
        yield base_url


def local_address(response: httpx2.Response) -> Any:
    """The client's end of the connection the response came on; None if it is closed."""
    try:
        return response.extensions["network_stream"].get_extra_info("client_addr")
    except OSError:
        return None


def test_a_500_keeps_the_connection_usable(url: str) -> None:
    with httpx2.Client(base_url=url, timeout=10) as client:
        failed = client.get("/fails", headers={"X-Request-Id": "req-1"})
        failed_from = local_address(failed)
        after = client.get("/healthz")
        after_from = local_address(after)

    assert failed.status_code == 500
    error = failed.json()["error"]
    assert error["code"] == "generalException"
    assert error["innererror"]["request-id"] == "req-1"
    assert "a bug" not in failed.text
    assert failed.headers.get("connection") != "close"
    assert after.status_code == 200
    assert failed_from is not None
    assert after_from == failed_from  # the same connection


def test_a_failure_after_the_answer_began_cuts_it_short(url: str) -> None:
    with httpx2.Client(base_url=url, timeout=10) as client:
        with pytest.raises(httpx2.RemoteProtocolError):
            client.get("/fails-midway")
        assert client.get("/healthz").status_code == 200  # on a new connection
