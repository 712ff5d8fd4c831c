"""Peering invitations in the OCM invite format: `base64url(token "@" fqdn)` for humans to pass
on, parsed at the last `@` (the token is URL-safe base64 and has none; the fqdn may carry a port).
"""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass

from federation.addresses import format_host, parse_host
from federation.errors import InvalidAddress

__all__ = ["TOKEN_BYTES", "InvalidInvitation", "Invitation", "new_invitation", "parse_invitation"]

TOKEN_BYTES = 32  # secrets.token_urlsafe(32): 256 bits, 43 characters
MAX_INVITATION_CHARS = 1024


class InvalidInvitation(ValueError):
    """The text is not an invitation (`base64url(token@fqdn)`)."""

    code = "invitation_malformed"


@dataclass(frozen=True)
class Invitation:
    token: str
    fqdn: str  # the inviting registry's domain, `host` or `host:port`

    def __str__(self) -> str:
        raw = f"{self.token}@{self.fqdn}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def new_invitation(fqdn: str) -> Invitation:
    return Invitation(secrets.token_urlsafe(TOKEN_BYTES), fqdn)


def parse_invitation(text: str) -> Invitation:
    text = text.strip()
    if not text or len(text) > MAX_INVITATION_CHARS:
        raise InvalidInvitation("an invitation is a non-empty base64url string")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (binascii.Error, ValueError) as exc:
        raise InvalidInvitation("the invitation is not base64url of token@domain") from exc
    token, sep, fqdn = raw.rpartition("@")
    if not sep or not token or not token.isascii() or not token.isprintable():
        raise InvalidInvitation("the invitation is not of the form token@domain")
    try:
        host, port = parse_host(fqdn)
    except InvalidAddress as exc:
        raise InvalidInvitation(f"the invitation names no valid domain: {exc}") from exc
    return Invitation(token, format_host(host, port))
