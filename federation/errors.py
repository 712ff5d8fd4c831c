"""Federation errors: one type per failure a caller can act on; `code` is stable for JSON output.

Two families: `DiscoveryError` (fetching and reading other servers' documents) and
`SignatureError` (a signed server-to-server request we refuse).
"""

from __future__ import annotations

__all__ = [
    "BadStatus",
    "BlockedAddress",
    "DigestMismatch",
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
    "SignatureError",
    "SignatureExpired",
    "SignatureInvalid",
    "SignatureKeysUnavailable",
    "SignatureMalformed",
    "SignatureMissing",
    "SignatureOutsideWindow",
    "SignatureReplayed",
    "SignatureUnknownKey",
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


class SignatureError(Exception):
    """Base of every refusal of a signed request; the message says why (safe to show the peer)."""

    code = "signature_error"


class SignatureMissing(SignatureError):
    """The request carries no signature we may use (none at all, none tagged `ocm`, or only the
    legacy scheme from a peer not allowed it). Callers that accept unsigned requests from a peer
    not yet pinned catch this one."""

    code = "signature_missing"


class SignatureMalformed(SignatureError):
    """The signature headers cannot be parsed, or the signature lacks what we require (`keyid`,
    `created`, a covered component, a known algorithm)."""

    code = "signature_malformed"


class SignatureUnknownKey(SignatureError):
    """The peer does not publish the key named by `keyid` (after at most one refresh)."""

    code = "signature_unknown_key"


class SignatureKeysUnavailable(SignatureError):
    """The peer's keys could not be fetched: try again later (a 503, not a 401)."""

    code = "signature_keys_unavailable"


class SignatureInvalid(SignatureError):
    """The signature does not match the request (method, URL, covered headers or parameters
    changed), or the key does not fit the algorithm."""

    code = "signature_invalid"


class DigestMismatch(SignatureError):
    """The signature is good but the body is not the one its signed digest describes."""

    code = "digest_mismatch"


class SignatureOutsideWindow(SignatureError):
    """Created too far in the future, older than the window, or created and expires too far
    apart."""

    code = "signature_outside_window"


class SignatureExpired(SignatureOutsideWindow):
    """The signature's own `expires` has passed."""

    code = "signature_expired"


class SignatureReplayed(SignatureError):
    """This very signature was already accepted once."""

    code = "signature_replayed"
