"""What the search writes: one `SearchRecord` per case (a JSONL line), and the grid reference.

`GridResult` is the exhaustive grid's result on a case, and `compare` measures a search record
against it. `training_scope` says what a file of records can teach a proposer: the keys it held
fixed, and the task kinds it holds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from hag_agent.data.jsonl_log import read_jsonl
from hag_agent.errors import HAGInputError, first_error
from hag_agent.hyperparameters import HyperParams
from hag_agent.tasks import TaskKind
from hag_agent.training_scope import TrainingScope, held_values

NOT_SEARCH_OUTPUT_HINT = "expected the output of `hag-agent dataset search`"

Stage = Literal["default", "prior", "coarse", "rescore", "refine", "grid"]
"""Which step of the search scored a configuration."""
ANCHOR_STAGES: frozenset[Stage] = frozenset({"default", "prior"})
"""The stages of the two references every record scores, whatever the search explores."""


class ScoredConfig(BaseModel):
    """One configuration the search scored."""

    model_config = ConfigDict(extra="forbid")

    params: dict[str, float | int]
    """The configuration."""
    score: float
    """Its score on ``samples`` samples."""
    samples: int
    """How many samples the score is over."""
    stage: Stage
    """Which step scored it."""


class SearchRecord(BaseModel):
    """The search's result for one case: one JSONL line, ready for fine-tuning a proposer."""

    model_config = ConfigDict(extra="forbid")

    id: str
    """The case id."""
    task: str
    """The task kind."""
    prompt: str
    """The case prompt (the SFT input)."""
    proposal: str
    """The best configuration as proposal JSON (`HyperParams.to_proposal_json`): the SFT target."""
    params: dict[str, float | int]
    """The best configuration as a dict."""
    score: float
    """The best configuration's score (K samples)."""
    default_score: float
    """`DEFAULT_PARAMS`' score on the same K seeds."""
    prior_score: float
    """The task prior's score on the same K seeds."""
    evaluations: float
    """Evaluations spent: model calls / K."""
    budget: int
    """The budget it ran under."""
    model_calls: int
    """Generation calls made."""
    completion_tokens: int
    """Tokens generated over all calls (where reported)."""
    wall_s: float
    """Wall time of the case (includes waiting for the concurrency limit)."""
    samples: int
    """K."""
    seed: int
    """Base seed (sample i used seed + i)."""
    evaluated: list[ScoredConfig]
    """Every configuration scored, in order, for analysis."""
    fixed: dict[str, float] | None = None
    """The values every configuration the search explored held (e.g. ``max_tokens`` 48 from
    ``--max-tokens``, and min_p): what a proposer trained on the record cannot learn. None in
    records written before the field (`training_scope` infers it from ``evaluated``)."""

    def best_params(self) -> HyperParams:
        """The best configuration as `HyperParams`."""
        return HyperParams.model_validate(self.params)


class GridResult(BaseModel):
    """An exhaustive evaluation of the whole ladder grid on one case."""

    model_config = ConfigDict(extra="forbid")

    id: str
    """The case id."""
    params: dict[str, float | int]
    """The grid's best configuration."""
    score: float
    """Its score."""
    default_score: float
    """`DEFAULT_PARAMS`' score on the same seeds."""
    evaluations: int
    """Configurations scored on K samples (the grid size, plus the default if off-grid)."""
    model_calls: int
    """Generation calls made."""
    wall_s: float
    """Wall time."""
    scores: list[ScoredConfig]
    """Every grid configuration's score."""


class Comparison(BaseModel):
    """How a search's result compares with the exhaustive grid's on the same case."""

    model_config = ConfigDict(extra="forbid")

    id: str
    """The case id."""
    fraction_of_optimum: float
    """Search best score / grid best score (1 when both are 0)."""
    gap_closed: float
    """(search - default) / (grid best - default); 1 when the grid cannot beat the default."""
    fraction_of_evaluations: float
    """Search evaluations / grid evaluations."""


def compare(record: SearchRecord, grid: GridResult) -> Comparison:
    """Compare one case's search record with its exhaustive grid result."""
    if grid.score <= 0:
        fraction = 1.0 if record.score <= 0 else math.inf
    else:
        fraction = record.score / grid.score
    headroom = grid.score - grid.default_score
    gap = 1.0 if headroom <= 1e-12 else (record.score - grid.default_score) / headroom
    return Comparison(
        id=record.id,
        fraction_of_optimum=fraction,
        gap_closed=gap,
        fraction_of_evaluations=record.evaluations / max(grid.evaluations, 1),
    )


def training_scope(records: Sequence[SearchRecord]) -> TrainingScope:
    """What records can teach a proposer: the keys they held fixed, and their task kinds.

    A key is fixed when every record states it held the key, at one value. Where a record does
    not say (written before records did), the fixed keys are inferred from every configuration
    the search explored in the whole file (the anchors left out: the task prior carries its own
    min_p, yet no search varied it).
    """
    kinds = [TaskKind(r.task) for r in records if r.task in _TASK_VALUES]
    stated = [r.fixed for r in records if r.fixed is not None]
    if records and len(stated) == len(records):
        return TrainingScope(fixed=held_values(stated), task_kinds=frozenset(kinds))
    explored = (
        entry.params for r in records for entry in r.evaluated if entry.stage not in ANCHOR_STAGES
    )
    return TrainingScope.of_data(explored, kinds)


_TASK_VALUES = frozenset(t.value for t in TaskKind)


def read_records(
    path: str | Path, *, warn: Callable[[str], None] | None = None, strict: bool = False
) -> list[SearchRecord]:
    """The records of a search JSONL file: the one reader of search output.

    Lenient (the default, for a search that resumes and an oracle that looks records up): a
    partial last line (a run killed mid-write) is ignored and any other unreadable line is
    reported through ``warn`` with its line number and skipped.

    Strict (for fine-tuning and head fitting, which must not silently train on part of a file):
    every line must be a search record of a known task whose params are a valid configuration;
    a last line without its newline is read. A case id seen twice keeps its last record.

    Raises:
        HAGInputError: Strict only: a missing or empty file, or a bad line (named ``FILE:LINE``).
    """
    path = Path(path)
    if strict:
        return _read_strictly(path)
    records: list[SearchRecord] = []

    def invalid(number: int, exc: ValidationError) -> None:
        if warn is not None:
            where, message = first_error(exc, "record")
            warn(f"{path}:{number}: not a search record ({where}: {message}); skipped")

    def partial(number: int) -> None:
        if warn is not None:
            warn(f"{path}:{number}: partial last line (an interrupted write); dropped")

    for _, record in read_jsonl(path, SearchRecord, on_invalid=invalid, on_partial=partial):
        records.append(record)
    return records


def _read_strictly(path: Path) -> list[SearchRecord]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HAGInputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise HAGInputError(f"{path}: cannot read it: {exc}") from None
    by_id: dict[str, SearchRecord] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            record = _checked_record(line, f"{path}:{number}")
            by_id.pop(record.id, None)
            by_id[record.id] = record
    if not by_id:
        raise HAGInputError(f"{path}: no search records; {NOT_SEARCH_OUTPUT_HINT}")
    return list(by_id.values())


def _checked_record(line: str, where: str) -> SearchRecord:
    try:
        record = SearchRecord.model_validate_json(line)
    except ValidationError as exc:
        field, message = first_error(exc, "record")
        raise HAGInputError(
            f"{where}: not a search record ({field}: {message}); {NOT_SEARCH_OUTPUT_HINT}"
        ) from None
    if record.task not in {t.value for t in TaskKind}:
        raise HAGInputError(
            f"{where}: unknown task {record.task!r} (one of {', '.join(t.value for t in TaskKind)})"
        )
    try:
        record.best_params()
    except ValidationError as exc:
        raise HAGInputError(
            f"{where}: params are not a valid configuration: {exc.errors()[0].get('msg')}"
        ) from None
    return record


__all__ = [
    "ANCHOR_STAGES",
    "NOT_SEARCH_OUTPUT_HINT",
    "Comparison",
    "GridResult",
    "ScoredConfig",
    "SearchRecord",
    "Stage",
    "compare",
    "read_records",
    "training_scope",
]
