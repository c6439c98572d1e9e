"""Scoring a sampled grid plan into search records: the exhaustive strategy on stored samples.

Each case's configurations (its task prior, the grid, the default) are scored by the search engine
on their K samples, read from the grid sampler's files (`PrecomputedSampler`). The best is the
highest score; among equal scores the one nearest the task prior wins (the prior itself first),
so that cases where many configurations tie teach the proposer a small, consistent change rather
than whichever tied configuration came first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from hag_agent.data.search_records import SearchRecord, Stage
from hag_agent.data.suites import SuiteCase
from hag_agent.errors import HAGInputError
from hag_agent.hyperparameters import HyperParams
from hag_agent.progress import ProgressCallback, StageProgress, no_progress
from hag_agent.search.engine import Anchors, SearchJob, SearchScope
from hag_agent.search.grid_plan import GridPlan
from hag_agent.search.grid_samples import PrecomputedSampler, SampledPlan
from hag_agent.search.sampling import MissingSample, Scorer
from hag_agent.search.strategies import ExhaustiveSearch, TieBreak
from hag_agent.training_scope import held_values

STAGE = "grid-score"
"""The stage name of `score_plan`'s progress events."""

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


@dataclass(frozen=True)
class PlanGrid(ExhaustiveSearch):
    """A plan's configurations for a case: its task's prior, the grid, then the default."""

    plan: GridPlan

    @property
    def scope(self) -> SearchScope:
        """The plan's K and seed; its budget is every configuration of the plan."""
        return SearchScope(self.plan.samples, self.plan.seed, budget=len(self.plan.configs))

    def _prior_index(self, case: SuiteCase) -> int:
        label = f"prior:{case.task.value}"
        if label not in self.plan.labels:
            raise HAGInputError(f"the plan has no {label} configuration")
        return self.plan.labels.index(label)

    def anchors(self, case: SuiteCase) -> Anchors:
        """The plan's default and the case's task prior."""
        default = self.plan.params(self.plan.labels.index("default"))
        return Anchors(default, self.plan.params(self._prior_index(case)))

    def held(self, case: SuiteCase) -> dict[str, float]:
        """The values every grid configuration of the plan holds (max_tokens, min_p)."""
        del case
        labelled = zip(self.plan.configs, self.plan.labels, strict=True)
        return held_values(config for config, label in labelled if label == "grid")

    def candidates(self, case: SuiteCase) -> list[tuple[HyperParams, Stage]]:
        """The prior, the grid in plan order, the default."""
        default, prior = self.anchors(case)
        grid: list[tuple[HyperParams, Stage]] = [
            (self.plan.params(i), "grid")
            for i, label in enumerate(self.plan.labels)
            if label == "grid"
        ]
        return [(prior, "prior"), *grid, (default, "default")]

    def tie_break(self, case: SuiteCase) -> TieBreak:
        """Nearest the task prior."""
        prior = self.anchors(case).prior
        return lambda params: _distance(params, prior)


def score_plan(
    plan: GridPlan,
    cases: Sequence[SuiteCase],
    samples: SampledPlan,
    *,
    scorer: Scorer | None = None,
    seconds_per_case: float = 0.0,
    progress: ProgressCallback = no_progress,
) -> list[SearchRecord]:
    """One `SearchRecord` per plan case that has samples under its default and its prior.

    Runs its own event loop (call it from synchronous code).

    Args:
        plan: The plan the samples were drawn from.
        cases: The suite cases (for their answers and metrics); matched by id.
        samples: `read_samples`' result.
        scorer: K outputs -> score (default `hag_agent.metrics.score_outputs`).
        seconds_per_case: Sampling wall time to record per case (the run's total / cases).
        progress: Told of each case scored; skipped cases come as ``note`` events.

    Raises:
        HAGInputError: When a plan case is not among ``cases``, or the plan has no prior for
            a case's task.
    """
    by_id = {case.id: case for case in cases}
    missing = [c.id for c in plan.cases if c.id not in by_id]
    if missing:
        raise HAGInputError(f"{len(missing)} plan cases are not in the suites, e.g. {missing[0]!r}")
    job = SearchJob(PlanGrid(plan), PrecomputedSampler(plan, samples), scorer)
    ordered = [by_id[c.id] for c in plan.cases]
    return asyncio.run(_score_cases(ordered, job, round(seconds_per_case, 4), progress))


async def _score_cases(
    cases: Sequence[SuiteCase], job: SearchJob, wall_s: float, progress: ProgressCallback
) -> list[SearchRecord]:
    records: list[SearchRecord] = []
    stage = StageProgress(progress, STAGE, len(cases))
    for case in cases:
        try:
            record = await job(case)
        except MissingSample as exc:
            stage.note(f"{exc}; skipped")
        else:
            # The engine timed the scoring; the record states the sampling time, as a search does.
            records.append(record.model_copy(update={"wall_s": wall_s}))
        stage.advance()
    stage.end()
    return records


__all__ = ["STAGE", "PlanGrid", "score_plan"]
