"""Whatever a client puts in `Authorization`, the API and WebDAV answer 401 (400 when the server
cannot parse the header at all), never 500: tokens with any JSON value in any header or claim,
parts that are not base64 or not UTF-8 or not JSON, any number of dots, huge ones."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Registry, running_registry
from tests.schema import assert_documented

API = "/graph/v1.0/me/drives"
EXAMPLES = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, idp_key_dir: Path) -> Iterator[Registry]:
    with running_registry(tmp_path_factory.mktemp("tokens") / "data", idp_key_dir) as registry:
        yield registry


@pytest.fixture(scope="module")
def dav_url(served: Registry) -> str:
    """A real space's WebDAV root, so the gateway has something it could serve."""
    headers = {"Authorization": f"Bearer {served.token('einstein')}"}
    with httpx2.Client(base_url=served.url, headers=headers) as client:
        drive = client.get("/graph/v1.0/me/drive").json()
    return f"/dav/spaces/{drive['id']}/"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def part(value: Any) -> str:
    return b64(json.dumps(value).encode())


def refused(client: httpx2.Client, dav_url: str, token: str) -> None:
    """Both the JSON API and WebDAV refuse the bearer of `token` as unauthenticated."""
    headers = {"Authorization": f"Bearer {token}".strip().encode()}
    api = client.get(API, headers=headers)
    assert api.status_code == 401, api.text
    assert api.json()["error"]["code"] == "unauthenticated"
    assert_documented(api)
    dav = client.request("PROPFIND", dav_url, headers={**headers, "Depth": "0"})
    assert dav.status_code == 401, dav.text


# Text an HTTP header can carry (as UTF-8): no control characters. Header values that HTTP
# itself forbids are `test_any_authorization_header_gets_401_or_400`'s.
header_text = st.characters(blacklist_categories=("Cc", "Cs"))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)


def fields(**plausible: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A JSON object whose named members are absent, plausible or any JSON value, with more
    members of any name besides."""
    members = {
        name: st.one_of(st.just(...), likely, json_values) for name, likely in plausible.items()
    }
    return st.builds(
        lambda named, extra: {**extra, **{k: v for k, v in named.items() if v is not ...}},
        st.fixed_dictionaries(members),
        st.dictionaries(st.text(max_size=6), json_values, max_size=2),
    )


def token_parts(issuer: str) -> st.SearchStrategy[str]:
    headers = fields(
        alg=st.sampled_from(["RS256", "ES256", "none", "HS256"]),
        kid=st.sampled_from(["k1", ""]),
        typ=st.just("JWT"),
        crit=st.just(["b64"]),
        b64=st.booleans(),
        jku=st.just("https://evil.example/jwks"),
    )
    claims = fields(
        iss=st.just(issuer),
        sub=st.just("einstein"),
        aud=st.sampled_from(["spacereg", ["spacereg"]]),
        exp=st.integers(min_value=0, max_value=2**40),
    )
    encoded = st.one_of(
        headers.map(part),
        claims.map(part),
        st.binary(max_size=40).map(b64),  # not JSON, often not UTF-8
        st.text(header_text, max_size=40),  # not base64
    )
    structured = st.tuples(headers.map(part), claims.map(part), st.binary(max_size=64).map(b64))
    return st.one_of(
        structured.map(".".join),
        st.lists(encoded, min_size=1, max_size=6).map(".".join),
    )


def test_tokens_of_any_shape_are_refused_with_401(served: Registry, dav_url: str) -> None:
    issuer = f"{served.url}/idp"

    @EXAMPLES
    @given(token=token_parts(issuer))
    def check(token: str) -> None:
        refused(client, dav_url, token)

    with httpx2.Client(base_url=served.url, timeout=10) as client:
        check()


def header_values() -> st.SearchStrategy[bytes]:
    """Any bytes an HTTP/1.1 client can send as a header value (no NUL, CR, LF; no whitespace
    at either end), alone or after the bearer scheme."""
    raw = st.binary(max_size=200)
    values = st.one_of(raw, raw.map(lambda value: b"Bearer " + value))
    return values.map(lambda value: value.translate(None, b"\x00\r\n\x0b\x0c").strip(b" \t"))


def test_any_authorization_header_gets_401_or_400(served: Registry, dav_url: str) -> None:
    @EXAMPLES
    @given(value=header_values())
    def check(value: bytes) -> None:
        for path, method in ((API, "GET"), (dav_url, "PROPFIND")):
            response = client.request(method, path, headers={"Authorization": value})
            assert response.status_code in (400, 401), (value, response.text)

    with httpx2.Client(base_url=served.url, timeout=10) as client:
        check()


def jws(header: Any, claims: Any, signature: str = "x") -> str:
    return ".".join([part(header), part(claims), signature])


# Each made for the issuer's URL, so that a token can get as far as its signature check.
KNOWN_BAD: dict[str, Callable[[str], str]] = {
    "alg a list (once a 500)": lambda _: "eyJhbGciOlsiUlMyNTYiXX0.e30.x",
    "iss an object": lambda _: jws({"alg": "RS256"}, {"iss": {"a": 1}}),
    "alg, kid and iss of wrong types": lambda _: jws({"alg": {"x": 1}, "kid": ["k"]}, {"iss": []}),
    "kid a list": lambda iss: jws({"alg": "RS256", "kid": ["k1"]}, {"iss": iss}),
    "crit not a list": lambda iss: jws({"alg": "RS256", "crit": 5}, {"iss": iss}),
    "crit naming a list": lambda iss: jws({"alg": "RS256", "crit": [[1]]}, {"iss": iss}),
    "b64 false": lambda iss: jws({"alg": "RS256", "b64": False, "crit": ["b64"]}, {"iss": iss}),
    "alg not Latin-1": lambda _: jws({"alg": "RS256\u2603"}, {}),
    "alg with a quote and a backslash": lambda _: jws({"alg": 'a"b\\c'}, {}),
    "alg a lone surrogate": lambda _: jws({"alg": "\ud800"}, {}),
    "not UTF-8": lambda _: ".".join([b64(b"\xff\xfe{"), b64(b"\xc3("), "x"]),
    "many dots": lambda _: "a." * 2000 + "a",
    "huge": lambda _: "e30." + "A" * 20_000 + ".x",
}


@pytest.mark.parametrize("make", KNOWN_BAD.values(), ids=KNOWN_BAD.keys())
def test_malformed_tokens_that_once_failed_are_refused(
    served: Registry, dav_url: str, make: Callable[[str], str]
) -> None:
    with httpx2.Client(base_url=served.url, timeout=10) as client:
        refused(client, dav_url, make(served.url + "/idp"))


def test_token_issued_for_an_untrusted_alg_with_our_issuer_is_refused(
    served: Registry, dav_url: str
) -> None:
    """The issuer is ours and the key id known: only the algorithm is wrong."""
    header = part({"alg": "HS256", "kid": "k1", "typ": "JWT"})
    claims = part({"iss": f"{served.url}/idp", "sub": "einstein", "aud": "spacereg"})
    with httpx2.Client(base_url=served.url, timeout=10) as client:
        refused(client, dav_url, f"{header}.{claims}.{b64(b'signature')}")
