"""The protocol pieces in `common/` that registry, storage and federation share."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from starlette.types import Message

from common import challenge
from common.backoff import backoff_s
from common.bounded import read_body, read_capped


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_a_body_is_read_whole_up_to_the_limit_and_refused_past_it() -> None:
    assert await read_capped(chunks(b"ab", b"cd"), 4) == b"abcd"
    assert await read_capped(chunks(b"ab", b"cde"), 4) is None
    assert await read_capped(chunks(b"ab"), 4, declared="5") is None  # refused before reading
    assert await read_capped(chunks(b"ab"), 4, declared="nonsense") == b"ab"


async def test_an_asgi_body_is_read_until_its_last_message_or_a_hang_up() -> None:
    def receiving(*messages: Message):
        pending = list(messages)

        async def receive() -> Message:
            return pending.pop(0)

        return receive

    more = {"type": "http.request", "body": b"ab", "more_body": True}
    last = {"type": "http.request", "body": b"cd", "more_body": False}
    gone = {"type": "http.disconnect"}
    assert await read_body(receiving(more, last), 4) == b"abcd"
    assert await read_body(receiving(more, gone), 4) == b"ab"
    assert await read_body(receiving(more, last), 3) is None


async def test_a_callback_confirms_only_by_echoing_the_challenge() -> None:
    asked: list[str] = []

    def answering(status: int, body: bytes | None = None, location: str | None = None):
        async def get(url: str) -> challenge.Answer:
            asked.append(url)
            echoed = url.split("challenge=")[1].split("&")[0].encode()
            return challenge.Answer(status, echoed if body is None else body, location)

        return get

    await challenge.confirm(answering(200), "https://h.example/hook?x=1", "topic", 60)
    assert asked[0].startswith("https://h.example/hook?x=1&mode=subscribe&topic=topic&")
    for get, reason in [
        (answering(200, b"something else"), "did not echo"),
        (answering(404), "status 404"),
        (answering(307, location="/elsewhere?q"), r"redirect \(307\) to /elsewhere;"),
    ]:
        with pytest.raises(challenge.CallbackRefused, match=reason):
            await challenge.confirm(get, "https://h.example/hook", "topic", 60)


def test_the_answering_side_echoes_only_a_request_for_its_topic() -> None:
    asked = {"mode": "subscribe", "topic": "disk1", "challenge": "c"}
    assert challenge.echo(asked, "disk1") == "c"
    assert challenge.echo(asked, None) is None  # nothing is being requested
    assert challenge.echo({**asked, "topic": "disk2"}, "disk1") is None
    assert challenge.echo({**asked, "mode": "unsubscribe"}, "disk1") is None
    assert challenge.echo({**asked, "challenge": ""}, "disk1") is None


def test_backoff_doubles_up_to_its_cap_and_jitter_only_stretches_it() -> None:
    assert [backoff_s(n, 0.5, 4.0) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert backoff_s(10_000, 1.0, 60.0) == 60.0
    stretched = [backoff_s(3, 1.0, 60.0, jitter=0.2) for _ in range(100)]
    assert all(4.0 <= s <= 4.8 for s in stretched) and len(set(stretched)) > 1
