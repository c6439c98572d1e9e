"""Task priors refitted on search records: one configuration per task kind, and their file.

The per-task prior a proposer has to beat is not only the shipped one (`TASK_PRIORS`): on a
search's own data, the one configuration with the best mean score over a kind's cases is the
strongest choice that ignores the query. `fit_priors` finds it for every kind, among the
configurations scored on every case of that kind (a grid scores all of them on every case);
proposer ``fitted-prior`` serves it, so an evaluation can put it beside the per-query proposers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hag_agent.data.search_records import SearchRecord, training_scope
from hag_agent.errors import HAGInputError, first_error
from hag_agent.hyperparameters import HyperParams
from hag_agent.tasks import TaskKind
from hag_agent.training_scope import TrainingScope


class TaskFit(BaseModel):
    """The configuration fitted for one task kind, and how it scored on the fitting cases."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    params: HyperParams
    """The configuration with the best mean score over the kind's cases."""
    score: float
    """Its mean score over those cases (in-sample)."""
    prior_score: float | None
    """The shipped task prior's mean score over the same cases; None when the records lack it."""
    cases: int = Field(ge=1)
    """How many cases of the kind it was fitted on."""
    compared: int = Field(ge=1)
    """How many configurations scored on every one of those cases were compared."""


class FittedPriors(BaseModel):
    """A ``fitted-prior`` file: the configuration fitted per kind, and what it was fitted on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tasks: dict[TaskKind, TaskFit]
    """The fit of each task kind the records hold."""
    scope: TrainingScope
    """What the records held fixed (``max_tokens``, min_p); a held budget is served from the
    task prior instead."""
    source: str = ""
    """The search file's sha256, when known."""
    case_ids: list[str] = Field(default_factory=list)
    """The ids of the cases fitted on (an evaluation must not score these)."""


def _key(params: dict[str, float | int]) -> str:
    return json.dumps(params, sort_keys=True)


def fit_priors(records: Sequence[SearchRecord], source: str = "") -> FittedPriors:
    """One configuration per task kind: the best mean score over the kind's records.

    Only configurations scored on every record of the kind are compared, so every mean is over
    the same cases; ties go to the configuration scored first.

    Raises:
        HAGInputError: No records, or a kind whose records share no scored configuration.
    """
    if not records:
        raise HAGInputError("no search records to fit priors on")
    by_task: dict[TaskKind, list[SearchRecord]] = {}
    for record in records:
        by_task.setdefault(TaskKind(record.task), []).append(record)
    return FittedPriors(
        tasks={task: _fit_task(task, group) for task, group in by_task.items()},
        scope=training_scope(records),
        source=source,
        case_ids=[r.id for r in records],
    )


def _fit_task(task: TaskKind, records: list[SearchRecord]) -> TaskFit:
    per_record = [{_key(e.params): e for e in r.evaluated} for r in records]
    shared = [key for key in per_record[0] if all(key in scored for scored in per_record[1:])]
    if not shared:
        raise HAGInputError(
            f"the {len(records)} {task.value} records share no scored configuration; fit on a "
            "grid's records (`hag-agent dataset grid-score`), which score every configuration"
        )
    means = {key: sum(s[key].score for s in per_record) / len(records) for key in shared}
    best = max(shared, key=means.__getitem__)  # the first of equal means: max keeps it
    priors = [next((e.score for e in r.evaluated if e.stage == "prior"), None) for r in records]
    known = [p for p in priors if p is not None]
    return TaskFit(
        params=HyperParams.model_validate(per_record[0][best].params),
        score=means[best],
        prior_score=sum(known) / len(known) if len(known) == len(records) else None,
        cases=len(records),
        compared=len(shared),
    )


def write_fitted_priors(priors: FittedPriors, path: Path) -> None:
    """Write ``priors`` as indented JSON (the parent folder is made)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(priors.model_dump_json(indent=2) + "\n", encoding="utf-8")


@lru_cache(maxsize=8)
def _read(path: str, mtime_ns: int, size: int) -> FittedPriors:
    # Keyed by the file's mtime and size too, so a rewritten file is read again.
    try:
        return FittedPriors.model_validate_json(Path(path).read_bytes())
    except OSError as exc:
        raise HAGInputError(f"{path}: cannot read it: {exc}") from None
    except ValidationError as exc:
        where, message = first_error(exc, "file")
        raise HAGInputError(
            f"{path}: not a fitted-priors file ({where}: {message}); write one with "
            "`hag-agent train prior`"
        ) from None


def read_fitted_priors(path: Path) -> FittedPriors:
    """The fitted priors in ``path`` (cached until the file changes).

    Raises:
        HAGInputError: No such file, or not a fitted-priors file.
    """
    try:
        status = path.stat()
    except OSError:
        raise HAGInputError(f"no such fitted-priors file: {path}") from None
    return _read(str(path), status.st_mtime_ns, status.st_size)


__all__ = [
    "FittedPriors",
    "TaskFit",
    "fit_priors",
    "read_fitted_priors",
    "write_fitted_priors",
]
