"""Rewriting the hrefs of a WebDAV answer (multistatus, lock discovery) as its body streams, for
a host that serves a tree under another prefix than its back end's."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable

# An href element's start tag and its text, which runs to the next "<".
_HREF = re.compile(rb"(<(?:[A-Za-z_][\w.-]*:)?href(?:\s[^>]*)?>)(\s*)([^<]*)")


class HrefRewriter:
    """Feed it the body's chunks; it gives back the body with every href's text passed through
    `rewrite`. Every text before the last "<" received is complete (it ends at a "<"), so only
    the bytes from that "<" on wait for the next chunk."""

    def __init__(self, rewrite: Callable[[bytes], bytes]) -> None:
        self._rewrite = rewrite
        self._pending = b""

    def feed(self, chunk: bytes) -> bytes:
        self._pending += chunk
        cut = self._pending.rfind(b"<")
        if cut <= 0:
            return b""
        done, self._pending = self._pending[:cut], self._pending[cut:]
        return self._hrefs(done)

    def end(self) -> bytes:
        done, self._pending = self._pending, b""
        return self._hrefs(done)

    def _hrefs(self, text: bytes) -> bytes:
        return _HREF.sub(lambda m: m[1] + m[2] + self._rewrite(m[3]), text)


async def rewritten(
    chunks: AsyncIterator[bytes], rewrite: Callable[[bytes], bytes]
) -> AsyncIterator[bytes]:
    rewriter = HrefRewriter(rewrite)
    async for chunk in chunks:
        yield rewriter.feed(chunk)
    yield rewriter.end()
