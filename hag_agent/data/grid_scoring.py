"""Scoring a sampled grid plan into search records, one per case, ready for `train sft`.

Each case's configurations are scored with the search's scorer on their K samples. The best is
the highest score; among equal scores the one nearest the task prior wins (the prior itself
first), so that cases where many configurations tie teach the proposer a small, consistent
change rather than whichever tied configuration came first.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hag_agent.data.grid_plan import GridPlan
from hag_agent.data.grid_sampler import INFO_FILE, SAMPLES_GLOB, read_sample_lines
from hag_agent.data.sampling import Scorer, default_scorer
from hag_agent.data.search_records import ScoredConfig, SearchRecord, Stage
from hag_agent.data.suites import SuiteCase
from hag_agent.errors import HAGInputError
from hag_agent.hyperparameters import HyperParams

_SPAN = {"temperature": 2.0, "top_p": 1.0, "top_k": 200.0, "repetition_penalty": 1.0}
"""How far apart two values of a parameter may be, for the tie-break distance."""


def _distance(params: HyperParams, prior: HyperParams) -> float:
    """Normalized L1 distance over the searched keys (top_k 0, meaning off, counts as 200)."""
    total = 0.0
    for key, span in _SPAN.items():
        a, b = float(getattr(params, key)), float(getattr(prior, key))
        if key == "top_k":
            a, b = a or span, b or span
        total += abs(a - b) / span
    return total


def read_samples(folder: Path) -> dict[int, dict[str, list[str]]]:
    """Config index -> case id -> K texts, from every sample file in ``folder``.

    A cut last line (a run killed mid-write) is skipped; a configuration found twice keeps its
    first copy.

    Raises:
        HAGInputError: When the folder has no sample files.
    """
    if not any(folder.glob(SAMPLES_GLOB)):
        raise HAGInputError(f"{folder}: no {SAMPLES_GLOB} files (not a grid sampler output)")
    samples: dict[int, dict[str, list[str]]] = {}
    for item in read_sample_lines(folder):
        samples.setdefault(int(item["config"]), item["texts"])
    return samples


def sampler_info(folder: Path) -> dict[str, Any]:
    """The sampler's own description of its run (empty when the file is missing)."""
    try:
        info: dict[str, Any] = json.loads((folder / INFO_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return info


def score_plan(
    plan: GridPlan,
    cases: Sequence[SuiteCase],
    samples: dict[int, dict[str, list[str]]],
    *,
    scorer: Scorer | None = None,
    seconds_per_case: float = 0.0,
    warn: Callable[[str], None] | None = None,
) -> list[SearchRecord]:
    """One `SearchRecord` per plan case that has samples under its default and its prior.

    Args:
        plan: The plan the samples were drawn from.
        cases: The suite cases (for their answers and metrics); matched by id.
        samples: `read_samples`' result.
        scorer: K outputs -> score (default `hag_agent.metrics.score_outputs`).
        seconds_per_case: Sampling wall time to record per case (the run's total / cases).
        warn: Told about plan cases that are skipped.

    Raises:
        HAGInputError: When a plan case is not among ``cases``.
    """
    score = scorer or default_scorer()
    by_id = {case.id: case for case in cases}
    missing = [c.id for c in plan.cases if c.id not in by_id]
    if missing:
        raise HAGInputError(f"{len(missing)} plan cases are not in the suites, e.g. {missing[0]!r}")
    default_index = plan.labels.index("default")
    records: list[SearchRecord] = []
    for plan_case in plan.cases:
        case = by_id[plan_case.id]
        prior_label = f"prior:{case.task.value}"
        if prior_label not in plan.labels:
            raise HAGInputError(f"the plan has no {prior_label} configuration")
        prior_index = plan.labels.index(prior_label)
        candidates: list[tuple[int, Stage]] = [(prior_index, "prior")]
        candidates += [(i, "grid") for i, label in enumerate(plan.labels) if label == "grid"]
        candidates.append((default_index, "default"))
        scored: list[tuple[int, float, Stage]] = []
        for index, stage in candidates:
            texts = samples.get(index, {}).get(case.id)
            if texts:
                scored.append((index, score(case, texts), stage))
        indexes = {index for index, _, _ in scored}
        if default_index not in indexes or prior_index not in indexes:
            if warn is not None:
                warn(f"{case.id}: no samples under the default or the prior; skipped")
            continue
        records.append(_record(plan, case, scored, default_index, prior_index, seconds_per_case))
    return records


def _record(
    plan: GridPlan,
    case: SuiteCase,
    scored: list[tuple[int, float, Stage]],
    default_index: int,
    prior_index: int,
    seconds_per_case: float,
) -> SearchRecord:
    prior = plan.params(prior_index)
    best_index, best_score, _ = min(
        scored, key=lambda item: (-round(item[1], 12), _distance(plan.params(item[0]), prior))
    )
    scores = {index: value for index, value, _ in scored}
    best = plan.params(best_index)
    k = plan.samples
    return SearchRecord(
        id=case.id,
        task=case.task.value,
        prompt=case.prompt,
        proposal=best.to_proposal_json(),
        params=best.model_dump(),
        score=best_score,
        default_score=scores[default_index],
        prior_score=scores[prior_index],
        evaluations=float(len(scored)),
        budget=len(plan.configs),
        model_calls=len(scored) * k,
        completion_tokens=0,  # the sampler does not count tokens
        wall_s=round(seconds_per_case, 4),
        samples=k,
        seed=plan.seed,
        evaluated=[
            ScoredConfig(params=plan.configs[i], score=s, samples=k, stage=stage)
            for i, s, stage in scored
        ],
    )


__all__ = ["read_samples", "sampler_info", "score_plan"]
