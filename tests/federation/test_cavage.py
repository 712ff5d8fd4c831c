"""Legacy draft-cavage signatures, signed by hand the way Nextcloud up to 32 signs OCM requests,
verified with the key from the peer's OCM discovery (`publicKey.publicKeyPem`)."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx2
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15

from federation.config import DiscoveryConfig
from federation.ocm_discovery import parse_ocm_discovery
from federation.peer_keys import legacy_keys
from federation.safe_http import SafeHttpClient
from tests.federation.signed_servers import LEGACY_KEY_ID, Receiver, Sender, refused

HEADERS = "(request-target) content-length date digest host"
BODY = b'{"shareWith":"marie@paris.test","name":"a.txt"}'


@pytest.fixture(scope="module")
def nextcloud_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
async def legacy_receiver(
    receiver: Receiver,
    sender: tuple[Sender, str],
    nextcloud_key: rsa.RSAPrivateKey,
    config: DiscoveryConfig,
) -> Receiver:
    """The receiver, given the key the sender's OCM discovery announces."""
    sender[0].legacy_pem = (
        nextcloud_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    url = sender[1] + "/ocm-provider"
    http = SafeHttpClient(config)
    try:
        provider = parse_ocm_discovery((await http.get(url, what="OCM")).json_object("OCM"), url)
    finally:
        await http.aclose()
    assert not provider.signs_http_sig
    receiver.legacy = legacy_keys(provider, url, peer="nextcloud")
    return receiver


def nextcloud_signed(
    key: rsa.RSAPrivateKey,
    algorithm: str,
    url: str,
    body: bytes = BODY,
    *,
    date: datetime | None = None,
) -> httpx2.Request:
    """POST `body` to `url` signed as Nextcloud's signatory does (draft-cavage-12)."""
    target = httpx2.URL(url)
    headers = {
        "content-length": str(len(body)),
        "date": format_datetime(date or datetime.now(UTC), usegmt=True),
        "digest": "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode(),
        "host": target.netloc.decode(),
    }
    lines = [f"(request-target): post {target.raw_path.decode()}"]
    lines += [f"{name}: {headers[name]}" for name in HEADERS.split()[1:]]
    digest = hashes.SHA256() if algorithm == "rsa-sha256" else hashes.SHA512()
    signature = key.sign("\n".join(lines).encode(), PKCS1v15(), digest)
    headers["signature"] = (
        f'keyId="{LEGACY_KEY_ID}",algorithm="{algorithm}",headers="{HEADERS}",'
        f'signature="{base64.b64encode(signature).decode()}"'
    )
    headers["content-type"] = "application/json"
    return httpx2.Request("POST", url, headers=headers, content=body)


@pytest.mark.parametrize("algorithm", ["rsa-sha256", "rsa-sha512"])
async def test_request_signed_the_nextcloud_way_verifies(
    plain: httpx2.AsyncClient,
    legacy_receiver: Receiver,
    sender: tuple[Sender, str],
    nextcloud_key: rsa.RSAPrivateKey,
    algorithm: str,
) -> None:
    url = legacy_receiver.base_url + "/ocm/legacy?x=1"
    response = await plain.send(nextcloud_signed(nextcloud_key, algorithm, url))
    assert response.status_code == 200, response.text
    assert response.json()["signed"] == {
        "scheme": "draft-cavage",
        "keyid": LEGACY_KEY_ID,
        "source": sender[1] + "/ocm-provider",
        "peer": "nextcloud",
        "algorithm": algorithm,
    }


async def test_tampered_nextcloud_requests_are_refused(
    plain: httpx2.AsyncClient, legacy_receiver: Receiver, nextcloud_key: rsa.RSAPrivateKey
) -> None:
    url = legacy_receiver.base_url + "/ocm/legacy"
    request = nextcloud_signed(nextcloud_key, "rsa-sha512", url)
    body = BODY.replace(b"a.txt", b"b.txt")
    altered = httpx2.Request("POST", url, headers=request.headers, content=body)
    refused(await plain.send(altered), "digest_mismatch")

    moved_url = legacy_receiver.base_url + "/ocm/legacy?to=einstein"
    moved = httpx2.Request("POST", moved_url, headers=request.headers, content=BODY)
    refused(await plain.send(moved), "signature_invalid")

    stale = nextcloud_signed(
        nextcloud_key, "rsa-sha512", url, date=datetime.now(UTC) - timedelta(minutes=6)
    )
    refused(await plain.send(stale), "signature_outside_window")

    assert (await plain.send(request)).status_code == 200
    again = httpx2.Request("POST", url, headers=request.headers, content=BODY)
    refused(await plain.send(again), "signature_replayed")


async def test_key_of_another_server_is_refused(
    plain: httpx2.AsyncClient, legacy_receiver: Receiver
) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    url = legacy_receiver.base_url + "/ocm/legacy"
    refused(await plain.send(nextcloud_signed(stranger, "rsa-sha256", url)), "signature_invalid")


async def test_legacy_signature_counts_as_none_where_it_is_not_allowed(
    plain: httpx2.AsyncClient, legacy_receiver: Receiver, nextcloud_key: rsa.RSAPrivateKey
) -> None:
    url = legacy_receiver.base_url + "/ocm/shares"
    refused(
        await plain.send(nextcloud_signed(nextcloud_key, "rsa-sha256", url)), "signature_missing"
    )
