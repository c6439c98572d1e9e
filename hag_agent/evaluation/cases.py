"""Which cases an evaluation runs: those a JSONL file names (e.g. a training's held-out set)."""

from __future__ import annotations

import json
from pathlib import Path

from hag_agent.errors import HAGInputError


def case_ids_from(path: str | Path) -> set[str]:
    """The case ids in a JSONL file (a suite, search records or ``held_out.jsonl``).

    Raises:
        HAGInputError: The file is missing or names no id.
    """
    file = Path(path)
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise HAGInputError(f"cannot read {file}: {exc}") from None
    ids: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            raise HAGInputError(f"{file}:{number}: not JSON") from None
        value = item.get("id", item.get("case_id")) if isinstance(item, dict) else None
        if isinstance(value, str):
            ids.add(value)
    if not ids:
        raise HAGInputError(f"{file} names no case id (lines need an 'id' field)")
    return ids


__all__ = ["case_ids_from"]
