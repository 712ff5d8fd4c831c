"""Confirming a callback URL the WebSub way: before anything is delivered to it, the callback
must answer `GET <callback>?mode=subscribe&topic=..&challenge=..&lease_seconds=..` with 200 and
the challenge as its body. The subscribing side (`confirm`) and the answering side (`echo`)."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

MODE = "subscribe"
REDIRECTS = frozenset({301, 302, 303, 307, 308})


class CallbackRefused(Exception):
    """The callback could not be asked, or did not confirm; the message says which."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    location: str | None = None


# GETs a URL without following redirects; raises CallbackRefused when it cannot be asked.
Get = Callable[[str], Awaitable[Answer]]


async def confirm(get: Get, callback: str, topic: str, lease_seconds: int) -> None:
    """Ask `callback` to echo a random challenge; anything else refuses it (CallbackRefused)."""
    challenge = secrets.token_urlsafe(24)
    query = urlencode(
        {"mode": MODE, "topic": topic, "challenge": challenge, "lease_seconds": lease_seconds}
    )
    separator = "&" if "?" in callback else "?"
    answer = await get(f"{callback}{separator}{query}")
    if answer.status in REDIRECTS:  # not followed: the subscriber must give the exact URL
        location = (answer.location or "?").partition("?")[0]
        raise CallbackRefused(
            f"callback answered the challenge with a redirect ({answer.status}) to "
            f"{location}; subscribe with that URL instead"
        )
    if answer.status != 200:
        raise CallbackRefused(
            f"callback answered the challenge with status {answer.status}, not 200"
        )
    if answer.body.strip() != challenge.encode():
        raise CallbackRefused("callback did not echo the challenge")


def echo(params: Mapping[str, str], topic: str | None) -> str | None:
    """The body that confirms a subscription to `topic` being requested now, or None when
    the query does not ask about that (or no subscription is being requested)."""
    challenge = params.get("challenge", "")
    if topic is None or params.get("mode") != MODE or params.get("topic") != topic:
        return None
    return challenge or None
