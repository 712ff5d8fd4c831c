"""The protocol pieces in `common/` that registry, storage and federation share."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.types import Message

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


def test_backoff_doubles_up_to_its_cap_and_jitter_only_stretches_it() -> None:
    assert [backoff_s(n, 0.5, 4.0) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert backoff_s(10_000, 1.0, 60.0) == 60.0
    stretched = [backoff_s(3, 1.0, 60.0, jitter=0.2) for _ in range(100)]
    assert all(4.0 <= s <= 4.8 for s in stretched) and len(set(stretched)) > 1
