"""Append-only JSONL logs that survive being killed: durable appends and tolerant reads.

Each finished result is one line, written with its newline in one call and synced before the
writer goes on. A run killed mid-write can leave a partial last line (no newline); readers never
parse it, and `drop_partial_line` cuts it off so the next append starts on a fresh line.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

Record = TypeVar("Record", bound=BaseModel)


def append_line(path: Path, text: str) -> None:
    """Append one line and make it durable (flush + fsync) before returning."""
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_jsonl(
    path: Path,
    model: type[Record],
    *,
    on_invalid: Callable[[int, ValidationError], None] | None = None,
    on_partial: Callable[[int], None] | None = None,
) -> Iterator[tuple[int, Record]]:
    """The valid records of a JSONL file, with their 1-based line numbers.

    A missing file has none; blank lines are passed over.

    Args:
        path: The file.
        model: What each line must validate as.
        on_invalid: Called with the line number and the error for a complete line that does not
            validate (the line is skipped).
        on_partial: Called with the line number of a partial last line (never parsed).
    """
    if not path.exists():
        return
    lines = path.read_bytes().split(b"\n")
    complete = lines[:-1]  # the part after the last newline, if any, is a partial line
    for number, raw in enumerate(complete, start=1):
        if not raw.strip():
            continue
        try:
            yield number, model.model_validate_json(raw)
        except ValidationError as exc:
            if on_invalid is not None:
                on_invalid(number, exc)
    if lines[-1].strip() and on_partial is not None:
        on_partial(len(lines))


def drop_partial_line(path: Path) -> None:
    """Cut a partial last line off ``path`` (if any) so appends stay line-aligned."""
    if not path.exists():
        return
    with path.open("r+b") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size == 0:
            return
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return  # the usual case: one byte read, not the whole file
        # Walk back block by block to the last newline.
        end = size
        while end > 0:
            start = max(0, end - (1 << 16))
            handle.seek(start)
            cut = handle.read(end - start).rfind(b"\n")
            if cut >= 0:
                end = start + cut + 1
                break
            end = start
        handle.truncate(end)
        handle.flush()
        os.fsync(handle.fileno())


__all__ = ["append_line", "drop_partial_line", "read_jsonl"]
