"""The signature base `verification.py` builds itself for plain components is the one the
library builds (`http_message_signatures`), byte for byte, on requests signed as our peers sign
them and on odd ones (a query, a header given twice, quotes in a parameter); components it does
not resolve go to the library."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import http_sf
import httpx2
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from http_message_signatures import (
    HTTPMessageSigner,
    HTTPMessageVerifier,
    MappingKeyResolver,
    algorithms,
)
from http_message_signatures.httpx2 import adapt_message

from federation.errors import SignatureInvalid
from federation.incoming import IncomingRequest
from federation.keys import SigningKeys
from federation.signature_base import signature_base
from federation.signing import sign_request

URL = "https://receiver.test/ocm/notifications?x=1&y=%20"
BODY = b'{"notificationType": "SHARE_ACCEPTED"}'


def incoming(sent: httpx2.Request) -> IncomingRequest:
    return IncomingRequest(
        sent.method, str(sent.url), tuple(sent.headers.multi_items()), sent.content
    )


def member(request: IncomingRequest) -> tuple[list[object], dict[str, object]]:
    parsed = http_sf.parse((request.header("signature-input") or "").encode(), tltype="dictionary")
    assert isinstance(parsed, dict)
    return parsed["ocm"]  # type: ignore[no-any-return]


def library_base(request: IncomingRequest, public: object) -> str:
    """What the library verifies: its covered components, `@signature-params` last."""
    verifier = HTTPMessageVerifier(
        signature_algorithm=algorithms.ED25519,
        key_resolver=MappingKeyResolver(public_keys={_keyid(request): public}, private_keys={}),
    )
    verifier.max_clock_skew = datetime.now(UTC) - datetime(2000, 1, 1, tzinfo=UTC)
    (result,) = verifier.verify(adapt_message(_rebuilt(request)), max_age=None, expect_tag="ocm")
    return "\n".join(f"{name}: {value}" for name, value in result.covered_components.items())


def _keyid(request: IncomingRequest) -> str:
    return str(member(request)[1]["keyid"])


def _rebuilt(request: IncomingRequest) -> httpx2.Request:
    return httpx2.Request(
        request.method, request.url, headers=list(request.headers), content=request.body
    )


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "application/json"},
        {"Idempotency-Key": "6f1c", "Date": "Mon, 30 Nov 2026 11:00:00 GMT"},
    ],
)
def test_our_base_is_the_library_s_for_what_peers_sign(
    tmp_path: Path, headers: dict[str, str]
) -> None:
    keys = SigningKeys.load_or_create(tmp_path)
    sent = httpx2.Request("POST", URL, headers=headers, content=BODY)
    sign_request(sent, keys)
    request = incoming(sent)

    ours = signature_base(request, member(request))

    assert ours is not None
    assert ours == library_base(request, keys.active.private_key.public_key())
    assert ours.splitlines()[0] == '"@method": POST'


def test_quotes_in_parameters_and_a_field_given_twice_come_out_as_the_library_s() -> None:
    private = Ed25519PrivateKey.generate()
    sent = httpx2.Request("POST", URL, headers=[("X-Twice", "a"), ("X-Twice", " b ")], content=BODY)
    signer = HTTPMessageSigner(
        signature_algorithm=algorithms.ED25519,
        key_resolver=MappingKeyResolver(public_keys={}, private_keys={'k"1\\': private}),
    )
    signer.sign(
        adapt_message(sent),
        key_id='k"1\\',
        created=datetime.now(UTC),
        nonce='a"b\\c',
        label="ocm",
        tag="ocm",
        covered_component_ids=["@method", "@target-uri", "x-twice"],
        body=sent.content,
    )
    request = incoming(sent)

    ours = signature_base(request, member(request))

    assert ours == library_base(request, private.public_key())
    assert '"x-twice": a, b' in (ours or "")


def test_a_component_with_parameters_is_left_to_the_library(tmp_path: Path) -> None:
    request = IncomingRequest("POST", URL, (("content-digest", "sha-256=:x:"),), BODY)
    with_params = ([("content-digest", {"sf": True}), ("@method", {})], {"created": 1})
    derived = ([("@authority", {})], {"created": 1})

    assert signature_base(request, with_params) is None
    assert signature_base(request, derived) is None


def test_a_signed_field_missing_from_the_request_is_refused() -> None:
    request = IncomingRequest("POST", URL, (), BODY)
    with pytest.raises(SignatureInvalid, match="date"):
        signature_base(request, ([("date", {})], {"created": 1}))
