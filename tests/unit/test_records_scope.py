"""`training_scope`: what a search file can teach a proposer, stated by new records, inferred from old."""

from __future__ import annotations

from pathlib import Path

from hag_agent.data.search_records import ScoredConfig, SearchRecord, read_records, training_scope
from hag_agent.hyperparameters import HyperParams
from hag_agent.tasks import TASK_PRIORS, TaskKind
from hag_agent.testing import search_record

ROOT = Path(__file__).resolve().parents[2]


def scored(params: HyperParams, stage: str = "grid") -> ScoredConfig:
    return ScoredConfig.model_validate(
        {"params": params.model_dump(), "score": 0.5, "samples": 2, "stage": stage}
    )


def record(task: TaskKind, explored: list[HyperParams], **update: object) -> SearchRecord:
    prior = TASK_PRIORS[task]
    base = search_record(f"{task.value}-{len(explored)}", task.value, "q", prior)
    evaluated = [scored(prior, "prior"), *(scored(p) for p in explored)]
    return base.model_copy(update={"evaluated": evaluated, **update})


def held(temperature: float, **values: float) -> HyperParams:
    return TASK_PRIORS[TaskKind.MATH].model_copy(
        update={"temperature": temperature, "min_p": 0.0, "max_tokens": 48, **values}
    )


def test_records_that_state_what_they_held_give_the_keys_all_of_them_held_at_one_value() -> None:
    records = [
        record(TaskKind.MATH, [held(0.2)], fixed={"min_p": 0.0, "max_tokens": 48.0}),
        record(TaskKind.CREATIVE, [held(0.7)], fixed={"min_p": 0.0, "max_tokens": 48.0}),
        record(TaskKind.MATH, [held(0.9)], fixed={"min_p": 0.0, "max_tokens": 64.0}),
    ]
    scope = training_scope(records)
    assert scope.fixed == {"min_p": 0.0}  # max_tokens was held, but not at one value
    assert scope.task_kinds == frozenset({TaskKind.MATH, TaskKind.CREATIVE})
    assert training_scope(records[:2]).fixed == {"min_p": 0.0, "max_tokens": 48.0}


def test_old_records_are_read_for_the_keys_the_search_never_varied() -> None:
    # The creative prior's own min_p (0.05) is an anchor, not an explored value: min_p is fixed.
    records = [
        record(TaskKind.CREATIVE, [held(0.2), held(0.7, top_p=0.7, top_k=0)]),
        record(TaskKind.REASONING, [held(1.0, repetition_penalty=1.2)]),
    ]
    assert all(r.fixed is None for r in records)
    scope = training_scope(records)
    assert scope.fixed == {"min_p": 0.0, "max_tokens": 48.0}
    assert scope.task_kinds == frozenset({TaskKind.CREATIVE, TaskKind.REASONING})
    # One record that does not say is enough to infer for the whole file.
    stated = records[0].model_copy(update={"fixed": {"max_tokens": 48.0}})
    assert training_scope([stated, records[1]]).fixed == {"min_p": 0.0, "max_tokens": 48.0}
    # A key that varied anywhere in the file is learned.
    varied = record(TaskKind.MATH, [held(0.3, max_tokens=96)])
    assert "max_tokens" not in training_scope([*records, varied]).fixed


def test_the_shipped_grid_data_held_min_p_and_max_tokens() -> None:
    records = read_records(ROOT / "docs" / "results" / "grid" / "search.jsonl", strict=True)
    scope = training_scope(records)
    assert scope.fixed == {"min_p": 0.0, "max_tokens": 48.0}
    kinds = frozenset({TaskKind.MATH, TaskKind.REASONING, TaskKind.TRANSLATION, TaskKind.CREATIVE})
    assert scope.task_kinds == kinds


def test_no_records_fix_nothing() -> None:
    scope = training_scope([])
    assert scope.fixed == {}
    assert scope.task_kinds == frozenset()
