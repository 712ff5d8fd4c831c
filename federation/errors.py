"""Discovery errors: one type per failure a caller can act on; `code` is stable for JSON output."""

from __future__ import annotations

__all__ = [
    "BadStatus",
    "BlockedAddress",
    "DiscoveryError",
    "DnsLookupFailed",
    "FetchFailed",
    "FetchTimeout",
    "InsecureScheme",
    "InvalidAddress",
    "IssuerMismatch",
    "IssuerNotTrusted",
    "MalformedDocument",
    "NoRegistry",
    "RegistryMismatch",
    "ResponseTooLarge",
    "TooManyRedirects",
    "UnknownAccount",
]


class DiscoveryError(Exception):
    """Base of everything discovery can fail with; the message says what and where."""

    code = "discovery_failed"


class InvalidAddress(DiscoveryError, ValueError):
    """The address (`user@host[:port]`) or URL given to us cannot be used."""

    code = "invalid_address"


class DnsLookupFailed(DiscoveryError):
    """A DNS server did not answer usefully (timeout, SERVFAIL); NXDOMAIN is not an error."""

    code = "dns_failed"


class InsecureScheme(DiscoveryError):
    """The safety rules refused the URL: not https (or plain http not allowed)."""

    code = "insecure_scheme"


class BlockedAddress(DiscoveryError):
    """The host resolves only to private, loopback, link-local or other non-public addresses."""

    code = "blocked_address"


class TooManyRedirects(DiscoveryError):
    code = "too_many_redirects"


class FetchFailed(DiscoveryError):
    """The remote could not be reached or TLS failed."""

    code = "fetch_failed"


class FetchTimeout(FetchFailed):
    code = "timeout"


class BadStatus(FetchFailed):
    """The remote answered with an HTTP status we cannot use."""

    code = "bad_status"

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class UnknownAccount(BadStatus):
    """WebFinger at the registry says it does not know this account (404)."""

    code = "unknown_account"


class ResponseTooLarge(DiscoveryError):
    code = "response_too_large"


class MalformedDocument(DiscoveryError):
    """A remote document is not what its specification says; the message names the field."""

    code = "malformed_document"


class NoRegistry(DiscoveryError):
    """The domain says (SRV target ".") that it runs no registry."""

    code = "no_registry"


class RegistryMismatch(DiscoveryError):
    """The registry found does not serve the domain we asked about."""

    code = "registry_mismatch"


class IssuerMismatch(DiscoveryError):
    """An OpenID configuration names an issuer other than the URL it was fetched for."""

    code = "issuer_mismatch"


class IssuerNotTrusted(DiscoveryError):
    """WebFinger names an issuer that the registry's metadata does not list."""

    code = "issuer_not_trusted"
