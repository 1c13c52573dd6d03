"""Keep secret values out of text that leaves a function (exception messages, task causes).

An exchange error may echo a signed request, and not always verbatim: a query string carries
the key URL-encoded (``+`` as ``%2B``, a space as ``+`` or ``%20``, in either hex case), a JSON
body carries it JSON-escaped (``"`` as ``\\"``, non-ASCII as ``\\u00e9``), and a message cut
to a length may end in the first part of one. Each character of a secret is matched in any of
those spellings, so a mix of them (a JSON-escaped value inside a URL-encoded query) is found
too. Stdlib only: the exchange adapter and every handler import this.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

__all__ = ["MASK", "MIN_SECRET", "redact"]

MASK = "***"
MIN_SECRET = 4
"""Shorter values are not secrets worth the false positives (and match too much)."""

_JSON_SHORT = {'"': '\\\\"', "\\": "\\\\\\\\", "/": "\\\\/", "\b": "\\\\b", "\f": "\\\\f"}
_JSON_SHORT |= {"\n": "\\\\n", "\r": "\\\\r", "\t": "\\\\t"}


_PARTIAL = re.compile(
    r"(?:(?:%[0-9a-f]{2}){0,3}%?[0-9a-f]?|\\(?:u[0-9a-f]{0,4}(?:\\u?[0-9a-f]{0,3})?)?)\Z",
    re.IGNORECASE,
)
"""The first part of one more character's escape, where a cut fell inside it (``%2``,
``%C3%A``, ``\\u00``)."""
_LONGEST_SPELLING = 12
"""Characters one character of a secret can take: ``\\ud83d\\ude00`` or ``%F0%9F%98%80``."""


def _percent(data: bytes) -> str:
    return "".join(f"%{byte:02x}" for byte in data)


def _spellings(char: str) -> list[str]:
    """Regexes for one character of a secret: itself, percent-encoded (as ``+`` too for a
    space), or JSON-escaped (``\\uXXXX``, surrogate pairs included, or its short escape)."""
    options = [re.escape(char), _percent(char.encode("utf-8", "surrogatepass"))]
    if char == " ":
        options.append(r"\+")
    code = ord(char)
    if code > 0xFFFF:
        high, low = 0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)
        options.append(rf"\\u{high:04x}\\u{low:04x}")
    else:
        options.append(rf"\\u{code:04x}")
    if char in _JSON_SHORT:
        options.append(_JSON_SHORT[char])
    return options


Spelling = list[re.Pattern[str]]


@lru_cache(maxsize=64)
def _patterns(secret: str) -> tuple[re.Pattern[str], re.Pattern[str], list[Spelling]]:
    """(the whole secret anywhere, its first ``MIN_SECRET`` characters, each character's
    spellings)."""
    parts = ["(?:" + "|".join(_spellings(char)) + ")" for char in secret]
    whole = re.compile("".join(parts), re.IGNORECASE)
    start = re.compile("".join(parts[:MIN_SECRET]), re.IGNORECASE)
    chars = [[re.compile(o, re.IGNORECASE) for o in _spellings(char)] for char in secret]
    return whole, start, chars


def _cut_start(text: str, secret: str) -> int | None:
    """Where a text cut inside a spelled secret begins that secret, if it does: its first
    ``MIN_SECRET`` or more characters run to the end (the last may be half an escape).

    Every way of reading each character is followed (the positions reachable after ``i``
    characters), rather than one regex nesting a group per character: that would hit the
    regex compiler's recursion limit on a long key (a PEM private key).
    """
    _, start, chars = _patterns(secret)
    at = max(0, len(text) - _LONGEST_SPELLING * len(secret))
    while (found := start.search(text, at)) is not None:
        reached = {found.start()}
        for index, spellings in enumerate(chars):
            if index >= MIN_SECRET and any(_PARTIAL.match(text, p) for p in reached):
                return found.start()
            reached = {m.end() for p in reached for o in spellings if (m := o.match(text, p))}
            if not reached:
                break
        at = found.start() + 1
    return None


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every secret value in it, in any spelling above, replaced by ``***``,
    also the start of one that the text ends with."""
    for secret in sorted({s for s in secrets if s and len(s) >= MIN_SECRET}, key=len)[::-1]:
        whole, _, _ = _patterns(secret)
        text = whole.sub(MASK, text)
        cut = _cut_start(text, secret)
        if cut is not None:
            text = text[:cut] + MASK
    return text
