"""The OCM invite format: base64url of `token@fqdn`, parsed at the last `@`."""

from __future__ import annotations

import base64

import pytest

from federation.invitations import InvalidInvitation, new_invitation, parse_invitation


def test_an_invitation_round_trips_and_its_token_is_long_and_random() -> None:
    first, second = new_invitation("zurich.test"), new_invitation("zurich.test")

    assert parse_invitation(str(first)) == first
    assert len(first.token) >= 43 and first.token != second.token
    assert "=" not in str(first)


def test_the_domain_is_what_follows_the_last_at_sign_and_may_have_a_port() -> None:
    text = base64.urlsafe_b64encode(b"to@ken@Registry.Zurich.test:8443").decode()

    invitation = parse_invitation(text)

    assert (invitation.token, invitation.fqdn) == ("to@ken", "registry.zurich.test:8443")


@pytest.mark.parametrize(
    "text",
    ["", "!!!", base64.urlsafe_b64encode(b"no-at-sign").decode(), "QHp1cmljaC50ZXN0"],
)
def test_what_is_not_an_invitation_is_refused(text: str) -> None:
    with pytest.raises(InvalidInvitation):
        parse_invitation(text)
