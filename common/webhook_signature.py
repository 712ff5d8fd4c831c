"""Signing deliveries the Standard Webhooks way (https://www.standardwebhooks.com): headers
`webhook-id` (the event id, the receiver's idempotency key), `webhook-timestamp` (unix seconds)
and `webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`. The timestamp
is signed, so a receiver refuses a delivery recorded and replayed more than five minutes later.

The key is the UTF-8 bytes of the subscription's secret, exactly as given; a Standard Webhooks
library takes it as `standard_secret(secret)` (`whsec_` + base64 of those bytes).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from standardwebhooks import Webhook, WebhookVerificationError

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
TOLERANCE_S = 300  # fixed by the standardwebhooks package, either way from the receiver's clock


class BadSignature(Exception):
    """Unsigned, signed with another secret, altered, or signed too long ago (a replay)."""


def standard_secret(secret: str) -> str:
    """The secret in the `whsec_<base64>` form Standard Webhooks libraries take."""
    return "whsec_" + base64.b64encode(secret.encode()).decode()


def signed_headers(secret: str, event_id: str, body: bytes, now: datetime) -> dict[str, str]:
    """The three headers of one delivery of `body`, signed at `now`."""
    signature = Webhook(secret.encode()).sign(event_id, now.astimezone(UTC), body.decode())
    return {
        ID_HEADER: event_id,
        TIMESTAMP_HEADER: str(int(now.timestamp())),
        SIGNATURE_HEADER: signature,
    }


def verify(secrets: Iterable[str], body: bytes, headers: Mapping[str, str]) -> str:
    """The delivery's event id if one of `secrets` signed it within the tolerance; otherwise
    BadSignature saying why."""
    plain = {name.lower(): value for name, value in headers.items()}
    reason = "no secret to check the signature with"
    for secret in secrets:
        try:
            Webhook(secret.encode()).verify(body, plain, json_parse=False)
        except WebhookVerificationError as exc:
            reason = str(exc)
        except ValueError:  # not UTF-8, or a malformed signature list
            reason = "malformed delivery"
        else:
            return plain[ID_HEADER]
    raise BadSignature(reason)
