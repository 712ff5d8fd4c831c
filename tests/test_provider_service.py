"""The provider service (`spacereg provider serve`) on real servers: its signed API, its
subscriptions with challenge verification, and signed deliveries to a real receiver."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest
import uvicorn
from standardwebhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from common.webhook_signature import BadSignature, standard_secret, verify
from storage.local import LocalProvider
from storage.provider import Change
from storage.service import create_service_app
from storage.service_config import ServiceConfig, ServiceConfigError, load_service_config
from storage.signatures import HmacAuth, authorization, body_digest
from storage.subscribers import MAX_PATHS_PER_DELIVERY, delivery_for
from tests.processes import ServiceProcess, clean_env
from tests.servers import free_port, serve

SECRET = "s" * 40
SUB_SECRET = "subscriber-secret-" + "x" * 20


class Service:
    """A provider service on a fixed port that a test can stop and start again."""

    def __init__(self, data_dir: Path, **config: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.root = data_dir / "spaces"
        self.config = ServiceConfig(
            secret=SECRET, name="disk1", port=self.port, data_dir=data_dir, **config
        )
        self.app: Starlette | None = None
        self._stack = ExitStack()

    def start(self) -> None:
        self.app = create_service_app(self.config, LocalProvider("disk1", self.root))
        self._stack.enter_context(serve(self.app, self.port))

    def stop(self) -> None:
        self._stack.close()

    def client(self) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(base_url=self.url, auth=HmacAuth(SECRET), timeout=10)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    running = Service(tmp_path / "provider", min_lease_seconds=1)
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
async def api(service: Service) -> AsyncIterator[httpx2.AsyncClient]:
    async with service.client() as client:
        yield client


@asynccontextmanager
async def serve_here(app: ASGIApp, port: int | None = None) -> AsyncIterator[str]:
    """Serve `app` on this test's event loop (tests.servers.serve uses a thread of its own)."""
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=3,  # connections left open do not hold the test up
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            raise RuntimeError(f"server on port {port} did not start")
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


@dataclass
class Receiver:
    """A subscriber's callback: answers challenges as told, records deliveries."""

    echo: str = "right"  # "right", "wrong", "refuse" or "redirect"
    fail_next: int = 0  # answer this many deliveries with `fail_status` first
    fail_status: int = 500
    challenges: list[dict[str, str]] = field(default_factory=list)
    deliveries: asyncio.Queue[tuple[dict[str, str], bytes]] = field(default_factory=asyncio.Queue)
    attempt_ids: list[str] = field(default_factory=list)  # webhook-id of every POST

    def app(self) -> Starlette:
        async def callback(request: Request) -> Response:
            if request.method == "GET":
                self.challenges.append(dict(request.query_params))
                if self.echo == "redirect":
                    return Response(status_code=307, headers={"Location": "/hook/"})
                if self.echo == "refuse":
                    return Response(status_code=404)
                challenge = request.query_params["challenge"]
                return PlainTextResponse(challenge if self.echo == "right" else challenge + "x")
            self.attempt_ids.append(request.headers["webhook-id"])
            if self.fail_next > 0:
                self.fail_next -= 1
                return Response(status_code=self.fail_status)
            await self.deliveries.put((dict(request.headers), await request.body()))
            return Response(status_code=204)

        return Starlette(routes=[Route("/hook", callback, methods=["GET", "POST"])])

    async def next(self, wait: float = 5) -> tuple[dict[str, str], dict[str, Any], bytes]:
        headers, body = await asyncio.wait_for(self.deliveries.get(), wait)
        return headers, json.loads(body), body


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    hook = Receiver()
    async with serve_here(hook.app()) as url:
        yield hook, f"{url}/hook"


async def subscribe(
    api: httpx2.AsyncClient, callback: str, lease: int = 600, secret: str = SUB_SECRET
) -> httpx2.Response:
    body = {"callback": callback, "secret": secret, "lease_seconds": lease}
    return await api.post("/provider/v1/subscriptions", json=body)


async def test_metadata_names_the_provider_and_its_capabilities(api):
    response = await api.get("/provider/v1/metadata")
    assert response.status_code == 200
    metadata = response.json()
    assert (metadata["name"], metadata["driver"], metadata["available"]) == ("disk1", "local", True)
    assert {"spaces", "subscriptions", "webdav"} <= set(metadata["capabilities"])
    assert metadata["webdavUrl"].endswith("/dav/spaces")


async def test_space_lifecycle_over_the_api(api, service):
    created = await api.post("/provider/v1/spaces", json={"id": "s1"})
    assert created.status_code == 201
    assert created.json()["id"] == "s1" and created.json()["used"] == 0
    (service.root / "s1" / "f.txt").write_bytes(b"12345")
    space = (await api.get("/provider/v1/spaces/s1")).json()
    assert space["used"] == 5 and space["etag"] != created.json()["etag"]
    assert (await api.get("/provider/v1/spaces")).json() == {"spaces": ["s1"]}
    detailed = (await api.get("/provider/v1/spaces", params={"details": "1"})).json()
    assert detailed["spaces"] == [space]
    assert (await api.put("/provider/v1/spaces/s1/quota", json={"total": 10})).status_code == 204
    stat = await api.get("/provider/v1/spaces/s1/stat", params={"path": "/f.txt"})
    assert (stat.json()["isDir"], stat.json()["size"]) == (False, 5)
    assert (await api.delete("/provider/v1/spaces/s1")).status_code == 204
    assert (await api.get("/provider/v1/spaces/s1")).status_code == 404


async def test_unsigned_stale_replayed_and_badly_signed_requests_are_refused(service):
    url = f"{service.url}/provider/v1/spaces"
    target, digest = "/provider/v1/spaces", body_digest(b"")
    stale = authorization(SECRET, "GET", target, digest, now=time.time() - 301)
    other = authorization("o" * 40, "GET", target, digest)
    good = authorization(SECRET, "GET", target, digest)
    wrong_path = authorization(SECRET, "GET", "/provider/v1/metadata", digest)
    async with httpx2.AsyncClient(timeout=10) as client:
        for header in (None, "Bearer x", stale, other, wrong_path):
            response = await client.get(url, headers={"Authorization": header} if header else {})
            assert response.status_code == 401, header
            assert response.json()["error"]["code"] == "unauthenticated"
        assert (await client.get(url, headers={"Authorization": good})).status_code == 200
        replayed = await client.get(url, headers={"Authorization": good})
        assert replayed.status_code == 401
        assert "replayed" in replayed.json()["error"]["message"]
        # The signature covers the body: the same header with another body is refused.
        signed = authorization(SECRET, "POST", target, body_digest(b'{"id": "a"}'))
        tampered = await client.post(url, content=b'{"id": "b"}', headers={"Authorization": signed})
        assert tampered.status_code == 401
        assert (await client.get(f"{service.url}/healthz")).status_code == 200


async def test_bad_input_is_a_400_with_a_json_error(api):
    cases = [
        ("POST", "/provider/v1/spaces", b"{not json"),
        ("POST", "/provider/v1/spaces", b"[1, 2]"),
        ("POST", "/provider/v1/spaces", b'{"id": 7}'),
        ("POST", "/provider/v1/spaces", b'{"id": "../etc"}'),
        ("POST", "/provider/v1/subscriptions", b'{"callback": "http://x/"}'),
        ("DELETE", "/provider/v1/subscriptions", b"{}"),
    ]
    await api.post("/provider/v1/spaces", json={"id": "s1"})
    cases.append(("PUT", "/provider/v1/spaces/s1/quota", b'{"total": -1}'))
    cases.append(("PUT", "/provider/v1/spaces/s1/quota", b'{"total": true}'))
    for method, path, body in cases:
        response = await api.request(method, path, content=body)
        assert response.status_code == 400, (method, path, body, response.text)
        assert set(response.json()["error"]) == {"code", "message"}


async def test_unknown_spaces_paths_and_routes_are_404(api):
    await api.post("/provider/v1/spaces", json={"id": "s1"})
    for method, path in [
        ("GET", "/provider/v1/spaces/nope"),
        ("DELETE", "/provider/v1/spaces/nope"),
        ("GET", "/provider/v1/spaces/nope/stat"),
        ("GET", "/provider/v1/nothing-here"),
    ]:
        response = await api.request(method, path)
        assert response.status_code == 404, path
    missing = await api.get("/provider/v1/spaces/s1/stat", params={"path": "/missing"})
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "pathNotFound")
    put = await api.put("/provider/v1/spaces/nope/quota", json={"total": 1})
    assert (put.status_code, put.json()["error"]["code"]) == (404, "spaceNotFound")


async def test_subscribing_needs_the_challenge_echoed(api, receiver):
    hook, callback = receiver
    for echo, reason in [
        ("wrong", "did not echo"),
        ("refuse", "status 404"),
        ("redirect", "redirect (307) to /hook/"),
    ]:
        hook.echo = echo
        refused = await subscribe(api, callback)
        assert refused.status_code == 400
        assert reason in refused.json()["error"]["message"]
    unreachable = await subscribe(api, f"http://127.0.0.1:{free_port()}/hook")
    assert "unreachable" in unreachable.json()["error"]["message"]
    short = await subscribe(api, callback, secret="short")
    assert short.status_code == 400
    hook.echo = "right"
    accepted = await subscribe(api, callback, lease=10**9)
    assert accepted.status_code == 201
    assert accepted.json()["topic"] == "disk1"
    assert accepted.json()["lease_seconds"] == 86400  # clamped
    challenge = hook.challenges[-1]
    assert (challenge["mode"], challenge["topic"], challenge["lease_seconds"]) == (
        "subscribe",
        "disk1",
        "86400",
    )


async def test_changes_are_delivered_signed_with_an_event_id(api, service, receiver):
    hook, callback = receiver
    assert (await subscribe(api, callback)).status_code == 201
    await api.post("/provider/v1/spaces", json={"id": "s1"})
    headers, event, body = await hook.next()
    assert verify([SUB_SECRET], body, headers) == event["id"]  # Standard Webhooks headers
    Webhook(standard_secret(SUB_SECRET)).verify(body, headers)  # as any such library checks
    assert event["type"] == "space.changed" and event["spaceId"] == "s1"
    assert set(event) == {"id", "type", "spaceId", "etag", "used", "paths", "time"}
    # A write through the service's WebDAV mount is reported with its path.
    async with httpx2.AsyncClient(
        base_url=service.url, auth=HmacAuth(SECRET, unsigned_payload=True), timeout=10
    ) as dav:
        put = await dav.put("/dav/spaces/s1/hello.txt", content=b"hello")
        assert put.status_code in (201, 204)
    _, written, _ = await hook.next()
    while "/hello.txt" not in written["paths"]:  # the local driver's watcher may report first
        _, written, _ = await hook.next()
    assert written["used"] == 5 and written["id"] != event["id"]
    # Unsubscribed: nothing more arrives.
    assert (
        await api.request("DELETE", "/provider/v1/subscriptions", json={"callback": callback})
    ).status_code == 204
    await api.post("/provider/v1/spaces", json={"id": "s2"})
    with pytest.raises(TimeoutError):
        await hook.next(wait=0.5)


async def test_failed_deliveries_are_retried_with_the_same_event_id(api, service, receiver):
    hook, callback = receiver
    service.app.state.subscriptions.retry_seconds = (0.05, 0.2)
    hook.fail_next = 3
    await subscribe(api, callback)
    await api.post("/provider/v1/spaces", json={"id": "s1"})
    await api.post("/provider/v1/spaces", json={"id": "s2"})
    _, first, _ = await hook.next()
    _, second, _ = await hook.next()
    assert [first["spaceId"], second["spaceId"]] == ["s1", "s2"]  # in order
    assert hook.attempt_ids == [first["id"]] * 4 + [second["id"]]


async def test_a_delivery_refused_as_malformed_is_dropped_not_retried(api, service, receiver):
    hook, callback = receiver
    hook.fail_next, hook.fail_status = 1, 400
    await subscribe(api, callback)
    await api.post("/provider/v1/spaces", json={"id": "s1"})
    await api.post("/provider/v1/spaces", json={"id": "s2"})
    _, delivered, _ = await hook.next()
    assert delivered["spaceId"] == "s2"  # s1's was refused once and not sent again
    assert len(hook.attempt_ids) == 2


def test_a_delivery_names_at_most_so_many_paths():
    many = tuple(f"/f{i}" for i in range(MAX_PATHS_PER_DELIVERY + 1))
    cut = json.loads(delivery_for(Change("s1", '"e"', 1, many), time.time()).body)
    assert len(cut["paths"]) == MAX_PATHS_PER_DELIVERY and cut["pathsTruncated"] is True
    whole = json.loads(delivery_for(Change("s1", '"e"', 1, ("/a",)), time.time()).body)
    assert whole["paths"] == ["/a"] and "pathsTruncated" not in whole


async def test_renewal_extends_the_lease_and_replaces_the_secret(api, service, receiver):
    hook, callback = receiver
    first = await subscribe(api, callback, lease=1)
    assert first.json()["lease_seconds"] == 1
    renewed = await subscribe(api, callback, lease=60, secret="renewed-" + "r" * 32)
    assert renewed.json()["lease_seconds"] == 60
    await asyncio.sleep(1.2)  # past the first lease
    await api.post("/provider/v1/spaces", json={"id": "s1"})
    headers, _, body = await hook.next()
    verify(["renewed-" + "r" * 32], body, headers)
    with pytest.raises(BadSignature):
        verify([SUB_SECRET], body, headers)


async def test_expired_subscribers_get_nothing(api, receiver):
    hook, callback = receiver
    await subscribe(api, callback, lease=1)
    await asyncio.sleep(1.2)
    await api.post("/provider/v1/spaces", json={"id": "s1"})
    with pytest.raises(TimeoutError):
        await hook.next(wait=0.5)


async def test_subscribers_survive_a_restart(service, receiver):
    hook, callback = receiver
    async with service.client() as api:
        await subscribe(api, callback)
    saved = service.config.data_dir / "subscriptions.json"
    assert oct(saved.stat().st_mode & 0o777) == "0o600"
    await asyncio.to_thread(service.stop)
    await asyncio.to_thread(service.start)
    async with service.client() as api:
        await api.post("/provider/v1/spaces", json={"id": "s1"})
    _, event, _ = await hook.next()
    assert event["spaceId"] == "s1"
    assert len(hook.challenges) == 1  # not asked again


def test_configuration_needs_a_long_secret(tmp_path):
    with pytest.raises(ServiceConfigError, match="secret"):
        load_service_config(env={"SPACEREG_PROVIDER_SECRET": "short"})
    config_file = tmp_path / "provider.toml"
    config_file.write_text(f'name = "disk9"\nsecret = "{SECRET}"\n[options]\nroot = "/srv/x"\n')
    config = load_service_config(
        config_file, env={"SPACEREG_PROVIDER_PORT": "9999", "SPACEREG_PROVIDER_OPTION_ROOT": "/y"}
    )
    assert (config.name, config.port, config.options) == ("disk9", 9999, {"root": "/y"})
    assert config.public_url == "http://127.0.0.1:9999"
    config_file.write_text(f'secret = "{SECRET}"\ncolour = "blue"\n')
    with pytest.raises(ServiceConfigError, match="colour"):
        load_service_config(config_file, env={})


def test_provider_serve_runs_as_a_process(tmp_path):
    port = free_port()
    config = tmp_path / "provider.toml"
    config.write_text(
        f'name = "disk7"\nport = {port}\nsecret = "{SECRET}"\ndata_dir = "{tmp_path / "data"}"\n'
    )
    service = ServiceProcess(
        ["provider", "serve", "--config", str(config)],
        port,
        tmp_path / "serve.log",
        clean_env(SPACEREG_PROVIDER_PORT=str(port)),
    )
    service.start()
    try:
        url = service.url
        assert httpx2.get(f"{url}/provider/v1/metadata").status_code == 401
        signed = httpx2.get(f"{url}/provider/v1/metadata", auth=HmacAuth(SECRET))
        assert signed.status_code == 200
        assert signed.json()["name"] == "disk7"
    finally:
        service.stop()
    assert "Application shutdown complete" in service.output()


def test_provider_serve_reports_configuration_errors(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "registry", "provider", "serve"],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
    )
    assert result.returncode == 2
    assert "secret" in result.stderr
