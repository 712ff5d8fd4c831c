"""The OCM share document we send, and our reading of it back: the `multi` protocol always,
the legacy `options` too for peers that speak OCM 1.0/1.1, roles to permissions and back
(Nextcloud's bitmask included)."""

from __future__ import annotations

import pytest

from registry.shares.ocm import parse_offer, role_of_permissions, share_document


def document(role: str, legacy: bool) -> dict[str, object]:
    return share_document(
        share_with="marie@paris.test",
        name="path",
        provider_id="7c08",
        owner="einstein@zurich.test",
        owner_name="Albert Einstein",
        webdav_uri="https://registry.zurich.test/dav/spaces/abc",
        secret="s3cret-s3cret",
        role=role,
        legacy=legacy,
    )


@pytest.mark.parametrize("role", ["viewer", "editor", "manager"])
@pytest.mark.parametrize("legacy", [False, True])
def test_what_we_send_reads_back_as_sent(role: str, legacy: bool) -> None:
    sent = document(role, legacy)
    offer = parse_offer(sent)
    assert (offer.role, offer.secret, offer.provider_id) == (role, "s3cret-s3cret", "7c08")
    assert offer.webdav_uri == "https://registry.zurich.test/dav/spaces/abc"
    protocol = sent["protocol"]
    assert isinstance(protocol, dict)
    assert protocol["name"] == "multi"
    assert ("options" in protocol) is legacy
    assert protocol["webdav"]["requirements"] == ["must-exchange-token"]


def test_a_legacy_peer_reads_the_role_from_the_options_alone() -> None:
    sent = document("editor", legacy=True)
    protocol = sent["protocol"]
    assert isinstance(protocol, dict)
    legacy_only = {**sent, "protocol": {"name": "webdav", "options": protocol["options"]}}
    assert parse_offer(legacy_only).role == "editor"


@pytest.mark.parametrize(
    ("permissions", "role"),
    [
        (["read"], "viewer"),
        (["read", "write"], "editor"),
        (["read", "write", "share"], "manager"),
        (["write"], None),
        ("1", "viewer"),
        (19, "editor"),
        ("31", "editor"),
        (0, None),
        (True, None),
        ("٣", None),
    ],
)
def test_permissions_become_roles(permissions: object, role: str | None) -> None:
    assert role_of_permissions(permissions) == role
