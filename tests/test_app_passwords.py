"""App passwords as a user and a desktop client meet them: made once and shown once, taken in
HTTP Basic by WebDAV and the client endpoints only, revoked at once, wrong ones throttled as
the IdP's sign-ins are, and made by `spacereg app-password` beside a running server."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.auth.idp.throttle import USER_FAILURES
from tests.clock import FakeClock
from tests.conftest import Registry, running_registry
from tests.processes import RegistryProcess
from tests.servers import free_port

PASSWORDS = "/api/v1/me/app-passwords"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def registry(tmp_path: Path, idp_key_dir: Path, clock: FakeClock) -> Iterator[Registry]:
    with running_registry(tmp_path / "data", idp_key_dir, clock=clock) as running:
        yield running


@pytest.fixture(scope="module")
def served_once(tmp_path_factory: pytest.TempPathFactory, idp_key_dir: Path) -> Iterator[Registry]:
    with running_registry(tmp_path_factory.mktemp("basic") / "data", idp_key_dir) as running:
        yield running


async def make(registry: Registry, username: str, label: str = "laptop") -> dict:
    async with registry.client(username) as client:
        made = await client.post(PASSWORDS, json={"label": label})
    assert made.status_code == 201, made.text
    return made.json()


def basic(registry: Registry, username: str, password: str) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(base_url=registry.url, auth=(username, password), timeout=10)


async def test_a_made_password_is_shown_once_and_opens_webdav_but_not_the_api(registry):
    made = await make(registry, "einstein")
    assert made["label"] == "laptop" and made["password"].startswith(made["id"])
    async with registry.client("einstein") as einstein:
        listed = (await einstein.get(PASSWORDS)).json()["value"]
        drive = (await einstein.get("/graph/v1.0/me/drive")).json()["id"]
    assert listed == [{k: v for k, v in made.items() if k != "password"}]
    async with basic(registry, "einstein", made["password"]) as client:
        dav = await client.request("PROPFIND", f"/dav/spaces/{drive}/", headers={"Depth": "0"})
        assert dav.status_code == 207
        assert (await client.put(f"/dav/spaces/{drive}/a.txt", content=b"a")).status_code == 201
        api = await client.get("/graph/v1.0/me/drives")
        assert api.status_code == 401  # the API takes bearer tokens only
        assert (await client.get(PASSWORDS)).status_code == 401
    async with basic(registry, "marie", made["password"]) as client:  # not hers
        assert (await client.request("PROPFIND", f"/dav/spaces/{drive}/")).status_code == 401


async def test_a_revoked_password_is_refused_at_once(registry):
    made = await make(registry, "einstein")
    async with registry.client("einstein") as einstein:
        drive = (await einstein.get("/graph/v1.0/me/drive")).json()["id"]
        async with basic(registry, "einstein", made["password"]) as client:
            assert (await client.get(f"/dav/spaces/{drive}/")).status_code != 401  # remembered
            async with registry.client("marie") as marie:
                assert (await marie.delete(f"{PASSWORDS}/{made['id']}")).status_code == 404
            assert (await einstein.delete(f"{PASSWORDS}/{made['id']}")).status_code == 204
            refused = await client.get(f"/dav/spaces/{drive}/")
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"].startswith('Basic realm="spacereg"')
        assert (await einstein.delete(f"{PASSWORDS}/{made['id']}")).status_code == 404
        assert (await einstein.get(PASSWORDS)).json()["value"] == []


async def test_webdav_without_credentials_is_challenged_with_basic_and_bearer(registry):
    async with httpx2.AsyncClient(base_url=registry.url) as client:
        answer = await client.request("PROPFIND", "/dav/spaces/x/")
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == 'Basic realm="spacereg", Bearer realm="spacereg"'
    assert answer.json()["error"]["code"] == "unauthenticated"


@pytest.mark.parametrize(
    "body",
    [
        {"label": "x" * 201},
        {"label": "tab\there"},
        {"label": 7},
        {"label": "ok", "scope": "all"},
        ["label"],
    ],
)
async def test_malformed_requests_are_refused_and_make_nothing(registry, body):
    async with registry.client("einstein") as einstein:
        refused = await einstein.post(PASSWORDS, json=body)
        assert refused.status_code == 400
        assert refused.json()["error"]["code"] == "invalidRequest"
        assert (await einstein.get(PASSWORDS)).json()["value"] == []


async def test_a_password_can_be_made_without_a_label(registry):
    async with registry.client("einstein") as einstein:
        made = await einstein.post(PASSWORDS)
    assert made.status_code == 201 and made.json()["label"] == ""


async def test_wrong_passwords_are_throttled_per_user(registry, clock):
    made = await make(registry, "einstein")
    async with registry.client("einstein") as einstein:
        drive = (await einstein.get("/graph/v1.0/me/drive")).json()["id"]
    wrong = made["id"] + "x" * 32
    for _ in range(USER_FAILURES):
        async with basic(registry, "einstein", wrong) as client:
            assert (await client.get(f"/dav/spaces/{drive}/")).status_code == 401
    async with basic(registry, "einstein", made["password"]) as client:
        locked = await client.get("/ocs/v1.php/cloud/user?format=json")
        assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
        clock.advance(timedelta(minutes=2))
        assert (await client.get("/ocs/v1.php/cloud/user?format=json")).status_code == 200


def test_the_command_makes_one_beside_a_running_server(tmp_path, idp_key_dir):
    served = RegistryProcess(tmp_path, free_port(), idp_key_dir)
    served.start()
    try:
        password = served.app_password("marie", "rclone")
        user = httpx2.get(
            f"{served.url}/ocs/v2.php/cloud/user?format=json", auth=("marie", password)
        )
        assert user.status_code == 200
        assert user.json()["ocs"]["data"]["id"] == "marie"
    finally:
        served.stop()


@settings(max_examples=80, deadline=None, database=None)
@given(
    credentials=st.one_of(
        st.binary(max_size=120).map(base64.b64encode),  # often no colon, often not UTF-8
        st.tuples(st.text(max_size=40), st.text(max_size=60)).map(
            lambda pair: base64.b64encode(":".join(pair).encode("utf-8", "surrogatepass"))
        ),
        st.binary(max_size=80),  # not base64 at all
    )
)
def test_any_basic_credentials_get_401_or_429_never_a_server_error(
    served_once: Registry, credentials: bytes
) -> None:
    value = (b"Basic " + credentials.translate(None, b"\x00\r\n\x0b\x0c")).strip(b" \t")
    with httpx2.Client(base_url=served_once.url, timeout=10) as client:
        for method, path in (
            ("PROPFIND", "/remote.php/webdav/"),
            ("GET", "/ocs/v2.php/cloud/user"),
        ):
            answer = client.request(method, path, headers={"Authorization": value})
            assert answer.status_code in (400, 401, 429), (value, answer.text)
            if answer.status_code != 400:  # 400: the server could not parse the header at all
                assert answer.json()["error"]["code"] in ("unauthenticated", "tooManyRequests")
