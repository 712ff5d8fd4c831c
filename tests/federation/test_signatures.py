"""Signed server-to-server requests (RFC 9421, OCM profile) over real HTTPS on loopback: a
real httpx2 client signs, a Starlette receiver verifies with keys fetched from the sender's
JWKS through the SSRF-safe client; every refusal answers its own error code."""

from __future__ import annotations

import asyncio
import ssl
from datetime import timedelta

import httpx2
import pytest
from http_message_signatures import ContentDigest

from federation.keys import SigningKeys
from federation.metadata import JWKS_PATH
from federation.safe_http import SafeHttpClient
from federation.signing import OcmSignatureAuth, sign_request
from registry.runtime.demo_ca import CertFiles
from tests.federation.conftest import discovery_config, tls
from tests.federation.dnsserver import DnsServer
from tests.federation.signed_servers import (
    Receiver,
    Sender,
    ShiftedClock,
    receiver_app,
    refused,
    stripping_proxy,
)
from tests.servers import free_port, serve

SHARE = {"shareWith": "marie@paris.test", "name": "a.txt", "providerId": "p-1"}


def signed(keys: SigningKeys, method: str, url: str, **options: object) -> httpx2.Request:
    request = httpx2.Request(method, url, **options)  # type: ignore[arg-type]
    sign_request(request, keys)
    return request


async def test_signed_request_is_accepted_and_names_its_signer(
    signing: httpx2.AsyncClient, receiver: Receiver, keys: SigningKeys
) -> None:
    response = await signing.post(receiver.base_url + "/ocm/shares?x=1", json=SHARE)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["signed"] == {
        "scheme": "rfc9421",
        "keyid": keys.active.kid,
        "source": receiver.jwks_url,
        "peer": "sender",
        "algorithm": "ed25519",
    }
    assert answer["url"] == receiver.base_url + "/ocm/shares?x=1"


async def test_signed_request_covers_the_ocm_components(
    plain: httpx2.AsyncClient, receiver: Receiver, keys: SigningKeys
) -> None:
    request = signed(keys, "POST", receiver.base_url + "/ocm/shares", json=SHARE)
    signature_input = request.headers["signature-input"]
    assert signature_input.startswith(
        'ocm=("@method" "@target-uri" "content-length" "content-digest");created='
    )
    for parameter in (f'keyid="{keys.active.kid}"', 'alg="ed25519"', 'tag="ocm"', "expires="):
        assert parameter in signature_input
    assert request.headers["content-digest"] == ContentDigest.create(request.content)
    assert (await plain.send(request)).status_code == 200


async def test_signed_request_without_body_is_accepted(
    signing: httpx2.AsyncClient, receiver: Receiver
) -> None:
    response = await signing.get(receiver.base_url + "/ocm/notifications")
    assert response.status_code == 200, response.text


async def test_through_the_ssrf_safe_client(
    receiver: Receiver, keys: SigningKeys, certs: CertFiles, dns_server: DnsServer
) -> None:
    http = SafeHttpClient(discovery_config(certs, dns_server))
    try:
        status = await http.post(
            receiver.base_url + "/ocm/shares",
            b'{"shareWith": "marie@paris.test"}',
            {"Content-Type": "application/json"},
            what="share",
            auth=OcmSignatureAuth(keys),
        )
    finally:
        await http.aclose()
    assert status == 200


async def test_unsigned_request_is_refused_where_a_signature_is_required(
    plain: httpx2.AsyncClient, receiver: Receiver
) -> None:
    response = await plain.post(receiver.base_url + "/ocm/shares", json=SHARE)
    refused(response, "signature_missing")
    accepted = await plain.post(receiver.base_url + "/ocm/open", json=SHARE)
    assert accepted.status_code == 200 and accepted.json()["signed"] is None


async def test_key_the_sender_does_not_publish_is_refused(
    plain: httpx2.AsyncClient, receiver: Receiver, tmp_path_factory: pytest.TempPathFactory
) -> None:
    stranger = SigningKeys.load_or_create(tmp_path_factory.mktemp("stranger"))
    request = signed(stranger, "POST", receiver.base_url + "/ocm/shares", json=SHARE)
    refused(await plain.send(request), "signature_unknown_key")


async def test_altered_body_is_refused_as_digest_mismatch(
    plain: httpx2.AsyncClient, receiver: Receiver, keys: SigningKeys
) -> None:
    request = signed(keys, "POST", receiver.base_url + "/ocm/shares", content=b'{"n": 1}')
    altered = httpx2.Request("POST", request.url, headers=request.headers, content=b'{"n": 2}')
    refused(await plain.send(altered), "digest_mismatch")


async def test_altered_body_with_its_digest_recomputed_is_refused_as_invalid(
    plain: httpx2.AsyncClient, receiver: Receiver, keys: SigningKeys
) -> None:
    request = signed(keys, "POST", receiver.base_url + "/ocm/shares", content=b'{"n": 1}')
    headers = httpx2.Headers(request.headers)
    headers["content-digest"] = ContentDigest.create(b'{"n": 2}')
    altered = httpx2.Request("POST", request.url, headers=headers, content=b'{"n": 2}')
    refused(await plain.send(altered), "signature_invalid")


async def test_altered_path_or_query_is_refused(
    plain: httpx2.AsyncClient, receiver: Receiver, keys: SigningKeys
) -> None:
    request = signed(keys, "POST", receiver.base_url + "/ocm/shares?to=marie", json=SHARE)
    for url in ("/ocm/notifications?to=marie", "/ocm/shares?to=einstein"):
        moved = httpx2.Request(
            "POST", receiver.base_url + url, headers=request.headers, content=request.content
        )
        refused(await plain.send(moved), "signature_invalid")


async def test_replayed_request_is_refused(
    plain: httpx2.AsyncClient, receiver: Receiver, keys: SigningKeys
) -> None:
    request = signed(keys, "POST", receiver.base_url + "/ocm/shares", json=SHARE)
    assert (await plain.send(request)).status_code == 200
    again = httpx2.Request("POST", request.url, headers=request.headers, content=request.content)
    refused(await plain.send(again), "signature_replayed")


async def test_identical_requests_signed_in_one_second_are_both_accepted(
    signing: httpx2.AsyncClient, receiver: Receiver
) -> None:
    """Ed25519 is deterministic; the nonce keeps two identical requests from looking like one."""
    first, second = await asyncio.gather(
        signing.post(receiver.base_url + "/ocm/shares", json=SHARE),
        signing.post(receiver.base_url + "/ocm/shares", json=SHARE),
    )
    assert (first.status_code, second.status_code) == (200, 200)


@pytest.mark.parametrize(
    ("sender_offset", "reason"),
    [(timedelta(minutes=-10), "older than 300 s"), (timedelta(minutes=2), "in the future")],
)
async def test_signature_outside_the_time_window_is_refused(
    certs: CertFiles,
    receiver: Receiver,
    keys: SigningKeys,
    sender_offset: timedelta,
    reason: str,
) -> None:
    context = ssl.create_default_context(cafile=certs.ca_file)
    auth = OcmSignatureAuth(keys, clock=ShiftedClock(sender_offset))
    async with httpx2.AsyncClient(verify=context, auth=auth, trust_env=False) as client:
        response = await client.post(receiver.base_url + "/ocm/shares", json=SHARE)
    assert reason in refused(response, "signature_outside_window")


async def test_signature_inside_the_window_but_past_its_expiry_is_refused(
    certs: CertFiles, receiver: Receiver, keys: SigningKeys
) -> None:
    context = ssl.create_default_context(cafile=certs.ca_file)
    auth = OcmSignatureAuth(keys, validity_s=60)
    async with httpx2.AsyncClient(verify=context, auth=auth, trust_env=False) as client:
        receiver.clock.offset = timedelta(seconds=30)
        assert (await client.post(receiver.base_url + "/ocm/shares", json=SHARE)).is_success
        receiver.clock.offset = timedelta(seconds=120)
        response = await client.post(receiver.base_url + "/ocm/shares", json=SHARE)
    refused(response, "signature_expired")


async def test_receiver_behind_a_prefix_stripping_proxy_verifies(
    certs: CertFiles, dns_server: DnsServer, sender: tuple[Sender, str], keys: SigningKeys
) -> None:
    """The sender signs https://proxy/sub/ocm/shares; the receiver, on plain http at another
    port with the prefix stripped (uvicorn --root-path /sub), rebuilds the same URL from its
    configured public base URL."""
    backend_port, proxy_port = free_port(), free_port()
    public = f"https://127.0.0.1:{proxy_port}/sub"
    receiver = Receiver(public, sender[1] + JWKS_PATH, discovery_config(certs, dns_server))
    backend = f"http://127.0.0.1:{backend_port}"
    context = ssl.create_default_context(cafile=certs.ca_file)
    auth = OcmSignatureAuth(keys)
    with (
        serve(receiver_app(receiver), backend_port, root_path="/sub"),
        serve(stripping_proxy("/sub", backend), proxy_port, **tls(certs)),
    ):
        async with httpx2.AsyncClient(verify=context, auth=auth, trust_env=False) as client:
            response = await client.post(public + "/ocm/shares?x=%7E1", json=SHARE)
            direct = await client.post(backend + "/ocm/shares", json=SHARE)
    assert response.status_code == 200, response.text
    assert response.json()["url"] == public + "/ocm/shares?x=%7E1"
    # addressed past the proxy, the request names a URL that is not ours: refused
    refused(direct, "signature_invalid")


async def test_key_rotation_while_requests_flow_loses_none(
    signing: httpx2.AsyncClient, receiver: Receiver, sender: tuple[Sender, str]
) -> None:
    """Rotating twice mid-stream: requests signed by the old key keep verifying (still
    published), the new key is found by one refetch of the JWKS per rotation."""
    keys = sender[0].keys
    assert (await signing.post(receiver.base_url + "/ocm/shares", json=SHARE)).is_success
    fetched_before = sender[0].hits["jwks"]
    kids: set[str] = set()

    async def one(n: int) -> int:
        response = await signing.post(receiver.base_url + "/ocm/shares", json={"n": n})
        if response.is_success:
            kids.add(response.json()["signed"]["keyid"])
        return response.status_code

    statuses: list[int] = []
    for rotation in range(3):
        statuses += await asyncio.gather(*(one(20 * rotation + n) for n in range(20)))
        if rotation < 2:
            in_flight = [asyncio.ensure_future(one(1000 + n)) for n in range(5)]
            await asyncio.sleep(0)
            keys.rotate(overlap_s=3600)
            receiver.key_clock.advance(31)  # refetches on unknown keys: at most one per 30 s
            statuses += await asyncio.gather(*in_flight)
    assert statuses == [200] * len(statuses)
    assert len(kids) == 3 and keys.active.kid in kids
    assert sender[0].hits["jwks"] - fetched_before == 2
