"""What free text from a client may hold: no control characters (but tab and line breaks in
text made of lines) and no bidirectional formatting, which makes one name read as another."""

from __future__ import annotations

import re
import unicodedata

# Arabic letter mark, left-to-right and right-to-left marks, embeddings, overrides, isolates.
BIDI_CONTROLS = frozenset(
    [
        "\u061c",
        "\u200e",
        "\u200f",
        *map(chr, range(0x202A, 0x202F)),
        *map(chr, range(0x2066, 0x206A)),
    ]
)
LINE_BREAKS = frozenset("\t\n\r")
# What the ids we hand out (of spaces, permissions, subscriptions) are made of; they are 32 hex
# digits today, other registries' ids have `$`, `!` or `@` in them.
_IDENTIFIER = re.compile(r"[A-Za-z0-9._~$!@:+-]{1,255}")


def unsafe_character(text: str, *, lines: bool = False) -> str | None:
    """The first character of `text` that text from a client must not hold, if any: a control
    character (tab, CR and LF are allowed when `lines`), a line or paragraph separator (unless
    `lines`), a surrogate or a bidirectional control."""
    for character in text:
        if character in BIDI_CONTROLS:
            return character
        category = unicodedata.category(character)
        if category in ("Cc", "Cs") and not (lines and character in LINE_BREAKS):
            return character
        if category in ("Zl", "Zp") and not lines:
            return character
    return None


def described(character: str) -> str:
    """`U+202E` for a message that names a refused character."""
    return f"U+{ord(character):04X}"


def is_identifier(text: str) -> bool:
    """Whether `text` can be the id of something we hold; others are not looked up at all
    (PostgreSQL refuses some characters, such as NUL, in any text it is given)."""
    return _IDENTIFIER.fullmatch(text) is not None
