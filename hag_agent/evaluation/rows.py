"""The evaluation's rows: one per case x proposer x seed run, kept in ``rows.jsonl`` for resuming.

A row is reused only for the same case prompt and the same setup (backend, its options,
critique, retries, max_tokens pin: `setup_digest`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from hag_agent.data.jsonl_log import read_jsonl
from hag_agent.evaluation.settings import EvalSettings
from hag_agent.file_hash import sha256_file

ROWS_FILE = "rows.jsonl"


def prompt_digest(prompt: str) -> str:
    """A short fingerprint of a prompt, so a row is never reused for a different case."""
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:16]


def setup_digest(
    backend: str, backend_options: Mapping[str, Any] | None, settings: EvalSettings
) -> str:
    """A short fingerprint of what makes two runs of one row comparable.

    The backend, its options, critique, retries and the max_tokens pin; not proposers, seeds or
    concurrency.
    """
    data = {
        "backend": backend,
        "options": dict(backend_options or {}),
        "critique": settings.critique,
        "max_retries": settings.max_retries,
        "max_tokens": settings.max_tokens,
    }
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def file_digest(spec: str | Path | None) -> str:
    """A fingerprint of a proposer's input: a file's content, or the name when it is no file."""
    if spec is None:
        return ""
    path = Path(spec)
    if path.is_file():
        return sha256_file(path)[:16]
    return str(spec)


def row_setup(setup: str, proposer_input: str) -> str:
    """The setup digest of one row: ``setup``, extended by what the proposer read.

    Proposers that read nothing (default, random, prior, self) keep ``setup`` itself, so their
    rows stay reusable; oracle, learned and self-tuned rows change with the search record, the
    head file or the tuned adapter they used.
    """
    if not proposer_input:
        return setup
    return hashlib.sha256(f"{setup}|{proposer_input}".encode()).hexdigest()[:16]


class EvalRow(BaseModel):
    """One case x proposer x seed run."""

    model_config = ConfigDict(extra="forbid")

    case_id: str
    """The case."""
    task: str
    """Its task kind."""
    metric_name: str
    """Its metric."""
    proposer: str
    """Who chose the configuration."""
    seed: int
    """The sampling seed."""
    prompt_sha: str
    """`prompt_digest` of the case prompt."""
    critique: bool
    """Whether critique was on."""
    setup: str
    """`setup_digest` of the run's backend and settings: rows of another setup are not reused."""
    metric: float
    """The case metric of the answer, in [0, 1]."""
    time_s: float
    """Wall time of the whole run."""
    tokens: int | None
    """Tokens generated for the answer(s), where the backend reports them."""
    attempts: int
    """Attempts made."""
    params: dict[str, float | int] | None
    """The configuration of the chosen attempt."""
    output: str
    """The answer."""

    def key(self) -> tuple[str, str, int, str, str]:
        """What identifies the run for resuming."""
        return (self.case_id, self.proposer, self.seed, self.prompt_sha, self.setup)


class Failure(BaseModel):
    """A run that failed (no row was written)."""

    model_config = ConfigDict(extra="forbid")

    case_id: str
    """The case."""
    proposer: str
    """The proposer."""
    seed: int
    """The seed."""
    error: str
    """What went wrong."""


def read_rows(path: Path, *, warn: Callable[[str], None] | None = None) -> list[EvalRow]:
    """Rows of a ``rows.jsonl`` file; a partial or unreadable line is reported and skipped."""

    # One message for both: either way the row is not there and will be run again.
    def unreadable(number: int, error: ValidationError | None = None) -> None:
        if warn is not None:
            warn(f"{path}:{number}: unreadable row; skipped (it will be run again)")

    return [
        row for _, row in read_jsonl(path, EvalRow, on_invalid=unreadable, on_partial=unreadable)
    ]


__all__ = ["ROWS_FILE", "EvalRow", "Failure", "prompt_digest", "read_rows", "setup_digest"]
