"""Word n-grams: the one tokenization and distinct-n ratio behind repetition and diversity.

The critique's repetition signal (one answer) and the diversity metric (a set of samples) both
ask the same question, how many of the word n-grams are distinct; they differ only in what they
make of a text too short to have any n-gram, so that choice is left to them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

WORD = re.compile(r"\w+")
"""A word: a run of Unicode word characters."""


def words(text: str) -> list[str]:
    """The lowercase words of ``text``."""
    return WORD.findall(text.lower())


def distinct_ratio(texts: Iterable[str], n: int) -> float | None:
    """Unique word n-grams over all word n-grams of the texts, or None when there are none.

    N-grams do not cross texts.
    """
    grams: list[tuple[str, ...]] = []
    for text in texts:
        tokens = words(text)
        grams.extend(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    return len(set(grams)) / len(grams) if grams else None


__all__ = ["WORD", "distinct_ratio", "words"]
