"""`ivybt.redact`'s quick check for a `password=` parameter (issue #19) finds one exactly when
the case-insensitive regex it replaces does, on any text: ASCII or not, with the long s (U+017F)
that the regex matches to "s", lone surrogates, and the word in any case."""

from __future__ import annotations

import re
from unittest import mock

from hypothesis import given
from hypothesis import strategies as st

from ivybt.redact import _has_password_word, redact

SLOW = re.compile("password=", re.IGNORECASE)  # the reference: what redact searched before

letters = st.sampled_from(list("pPaAsSſwWoOrRdD=é×★ \u00df\u212a\udc80x"))
words = st.lists(letters, max_size=12).map("".join)
near_misses = st.builds(
    "".join,
    st.lists(st.sampled_from(["password=", "PassWord=", "paſſword=", "pass word=", "password",
                              "passwοrd=", "PASSWORD=", "<b>×</b>", "\udc80"]), max_size=4),
)  # fmt: skip
texts = st.builds(lambda a, b, c: a + b + c, words | st.text(max_size=30), near_misses, words)


@given(texts, st.integers(1, 12))
def test_quick_check_agrees_with_the_regex(text: str, piece: int) -> None:
    """Also read in pieces of 1..12 characters, so the word falls across every cut."""
    found = SLOW.search(text) is not None
    assert _has_password_word(text) == found
    with mock.patch("ivybt.redact._PIECE", piece):
        assert _has_password_word(text) == found


@given(texts)
def test_redact_masks_as_the_regex_would(text: str) -> None:
    masked = redact(text)
    if SLOW.search(text) is None and "://" not in text:
        assert masked is text  # nothing hidden: the text itself, not a copy
    assert "S3cret" not in redact(text + " password=S3cret")
