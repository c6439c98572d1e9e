"""Plain lines on a rich console: summaries, warnings and paths printed as they are.

A command's summary line holds file names, ids and model output, so rich must neither read it
as markup (``[...]``), colour numbers and paths in it, nor fold it at the terminal's width (a
path cut in two cannot be copied).
"""

from __future__ import annotations

from rich.console import Console


def print_plain(console: Console, text: str, *, style: str | None = None) -> None:
    """Print ``text`` on ``console`` as one line: no markup, no highlighting, no wrapping."""
    console.print(text, style=style, markup=False, highlight=False, soft_wrap=True)


__all__ = ["print_plain"]
