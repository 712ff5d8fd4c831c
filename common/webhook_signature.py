"""Signing deliveries the Standard Webhooks way (https://www.standardwebhooks.com): headers
`webhook-id` (the event id, the receiver's idempotency key), `webhook-timestamp` (unix seconds)
and `webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`. The timestamp
is signed, so a receiver refuses a delivery recorded and replayed more than five minutes later.

The key is the UTF-8 bytes of the subscription's secret, exactly as given; a Standard Webhooks
library takes it as `standard_secret(secret)` (`whsec_` + base64 of those bytes).
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from standardwebhooks import Webhook

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
TOLERANCE_S = 300  # either way from the receiver's clock, as the standardwebhooks package checks


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


def verify(
    secrets: Iterable[str],
    body: bytes,
    headers: Mapping[str, str],
    now: datetime | None = None,
) -> str:
    """The delivery's event id if one of `secrets` signed it within `TOLERANCE_S` of `now`
    (default: this machine's clock); otherwise BadSignature saying why.

    The timestamp is checked here, against the receiver's clock as given, and the signature
    by comparing what the library signs for each secret with the signatures sent."""
    plain = {name.lower(): value for name, value in headers.items()}
    event_id, sent_at = plain.get(ID_HEADER), plain.get(TIMESTAMP_HEADER, "")
    if not event_id or not sent_at.isdigit():
        raise BadSignature("missing webhook-id or webhook-timestamp")
    moment = datetime.fromtimestamp(int(sent_at), UTC)
    if abs(((now or datetime.now(UTC)) - moment).total_seconds()) > TOLERANCE_S:
        raise BadSignature("the timestamp is too old or too new (a replay?)")
    sent = {part.strip() for part in plain.get(SIGNATURE_HEADER, "").split(" ")}
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise BadSignature("malformed delivery") from None
    for secret in secrets:
        expected = Webhook(secret.encode()).sign(event_id, moment, text)
        if any(hmac.compare_digest(expected, signature) for signature in sent):
            return event_id
    raise BadSignature("no matching signature")
