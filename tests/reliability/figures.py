"""Counts the reliability tests gather while they run, printed at the end of the tier.

A test adds to a named row (``FIGURES["hostile prompts"]["model proposals clamped"] += 1``);
the conftest prints every row, so the figures in docs/reliability.md can be read off a run.
"""

from __future__ import annotations

from collections import Counter, defaultdict

FIGURES: defaultdict[str, Counter[str]] = defaultdict(Counter)
