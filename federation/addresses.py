"""Account addresses (`user@host[:port]`, optionally `acct:`-prefixed) parsed once, strictly."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import unquote

from federation.errors import InvalidAddress

__all__ = ["Address", "format_host", "parse_address", "parse_host"]

MAX_ADDRESS_CHARS = 512
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_FORBIDDEN_IN_USER = re.compile(r"[\s\x00-\x1f\x7f/?#]")


@dataclass(frozen=True)
class Address:
    user: str
    host: str
    port: int | None = None

    @property
    def domain(self) -> str:
        """The part after the last `@`, as users write it (`host` or `host:port`)."""
        return format_host(self.host, self.port)

    @property
    def acct(self) -> str:
        """The `acct:` URI for WebFinger (RFC 7565); `@` and `%` in the user are escaped."""
        user = self.user.replace("%", "%25").replace("@", "%40")
        return f"acct:{user}@{self.domain}"

    def __str__(self) -> str:
        return f"{self.user}@{self.domain}"


def parse_address(text: str) -> Address:
    """Split at the LAST `@` (OCM rule), so `a@b@host` is user `a@b` at `host`."""
    if not isinstance(text, str) or not text or len(text) > MAX_ADDRESS_CHARS:
        raise InvalidAddress("address must be a non-empty string of at most 512 characters")
    is_acct = text[:5].lower() == "acct:"
    body = text[5:] if is_acct else text
    user, sep, hostport = body.rpartition("@")
    if not sep or not user:
        raise InvalidAddress(f"address {text!r} is not of the form user@host")
    if is_acct:
        user = unquote(user)
    if not user or _FORBIDDEN_IN_USER.search(user):
        raise InvalidAddress(f"address {text!r} has an empty user or forbidden characters in it")
    host, port = parse_host(hostport)
    return Address(user=user, host=host, port=port)


def parse_host(hostport: str) -> tuple[str, int | None]:
    """Parse `host`, `host:port` or `[v6]:port`; return the lower-case ASCII host and the port."""
    port: int | None = None
    if hostport.startswith("["):
        inner, sep, rest = hostport[1:].partition("]")
        if not sep:
            raise InvalidAddress(f"host {hostport!r} has an unclosed '['")
        try:
            host = str(ipaddress.IPv6Address(inner))
        except ValueError as exc:
            raise InvalidAddress(f"host {hostport!r} is not a valid IPv6 address") from exc
        if rest:
            port = _parse_port(rest.removeprefix(":") if rest.startswith(":") else "x", hostport)
        return host, port
    host, sep, port_text = hostport.rpartition(":")
    if not sep:
        host = port_text
    else:
        port = _parse_port(port_text, hostport)
    return _normalise_name(host, hostport), port


def format_host(host: str, port: int | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"


def _parse_port(text: str, whole: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise InvalidAddress(f"host {whole!r} has an invalid port")
    return int(text)


def _normalise_name(host: str, whole: str) -> str:
    host = host.rstrip(".") if host.endswith(".") and not host.endswith("..") else host
    try:
        return str(ipaddress.IPv4Address(host))
    except ValueError:
        pass
    try:
        ascii_host = host.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise InvalidAddress(f"host {whole!r} is not a valid host name") from exc
    labels = ascii_host.split(".")
    if len(ascii_host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise InvalidAddress(f"host {whole!r} is not a valid host name")
    return ascii_host
