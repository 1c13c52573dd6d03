"""Redaction of secret values in every spelling a request may carry them in."""

from __future__ import annotations

import json
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickstep.redaction import redact

SECRET = 'sk-Live+4f/9a=c2 "q\\z" é€😀'


@pytest.mark.parametrize(
    "spelled",
    [
        SECRET,
        quote(SECRET, safe=""),
        quote(SECRET, safe="").lower(),
        quote(SECRET),
        quote_plus(SECRET),
        json.dumps(SECRET)[1:-1],
        json.dumps(SECRET, ensure_ascii=False)[1:-1],
        json.dumps(SECRET).upper()[1:-1].replace("SK-LIVE", "sk-Live"),
    ],
    ids=["plain", "url", "url-lower", "url-path", "url-plus", "json", "json-utf8", "json-upper"],
)
def test_redact_when_the_secret_is_spelled_any_way_then_it_is_masked(spelled: str) -> None:
    assert redact(f"GET /x?k={spelled}&y=1", [SECRET]) == "GET /x?k=***&y=1"


def test_redact_when_spellings_are_mixed_in_one_value_then_it_is_masked() -> None:
    mixed = json.dumps(SECRET)[1:12] + quote(SECRET[11:], safe="")

    assert redact(f"[{mixed}]", [SECRET]) == "[***]"


def test_redact_when_a_cut_text_ends_with_the_start_of_a_spelled_secret_then_masks_it() -> None:
    assert redact("key=" + quote(SECRET, safe="")[:14], [SECRET]) == "key=***"
    assert redact("key=sk-L", [SECRET]) == "key=***"
    assert redact("key=sk-", [SECRET]) == "key=sk-"  # 3 characters: not a piece worth hiding


@pytest.mark.parametrize(
    "spelled",
    [
        quote(SECRET, safe=""),
        quote_plus(SECRET),
        json.dumps(SECRET)[1:-1],
        json.dumps(SECRET, ensure_ascii=False)[1:-1],
    ],
    ids=["url", "url-plus", "json", "json-utf8"],
)
def test_redact_when_the_cut_falls_anywhere_in_a_spelled_secret_then_nothing_is_left(
    spelled: str,
) -> None:
    for cut in range(4, len(spelled) + 1):
        assert redact(f"key={spelled[:cut]}", [SECRET]) == "key=***", spelled[:cut]


def test_redact_when_one_secret_contains_another_then_the_longer_goes_first() -> None:
    assert redact("a=abcdef-123456", ["abcdef", "abcdef-123456"]) == "a=***"


def test_redact_ignores_empty_short_and_missing_values() -> None:
    assert redact("nothing secret: abc", ["", "abc", None]) == "nothing secret: abc"


@settings(max_examples=200, deadline=None)
@given(secret=st.text(min_size=4, max_size=40), before=st.text(max_size=20))
def test_redact_for_any_secret_then_no_spelling_of_it_survives(secret: str, before: str) -> None:
    spellings = [
        secret,
        quote(secret, safe=""),
        quote_plus(secret),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
    ]
    text = before + " | ".join(spellings)

    redacted = redact(text, [secret])

    for spelled in spellings:
        assert spelled not in redacted


def test_redact_when_a_long_private_key_is_cut_anywhere_then_nothing_of_it_is_left() -> None:
    """A PEM key is ~1,700 characters with newlines: no regex compiler limit, no piece kept."""
    body = "".join(f"{i:04x}MIIEvQIBADANBgkqhkiG9w0BAQEFAASC+/=" for i in range(40))
    key = "-----BEGIN PRIVATE KEY-----\n" + body + "\n-----END PRIVATE KEY-----\n"
    escaped = json.dumps(key)[1:-1]

    assert redact(f'{{"privateKey": "{escaped}"}}', [key]) == '{"privateKey": "***"}'
    for cut in (10, 500, len(escaped) - 3):
        assert redact(f"error: {escaped[:cut]}", [key]) == "error: ***"
