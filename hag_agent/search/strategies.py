"""The search strategies: the paper's two-stage search and the exhaustive grid.

`TwoStageSearch`, per case, with min_p held at ``space.min_p`` and max_tokens at the task prior's
(or the ``max_tokens`` setting); ``budget`` caps the evaluations of a case, i.e. its model calls
at ``budget * K``:

1. The default configuration (`DEFAULT_PARAMS`) and the task prior are always scored on K
   samples, first.
2. Stage one: the coarse grid over temperature, top_p, top_k and repetition_penalty is scored on
   c = ``coarse_samples`` samples each. If it costs more than ``coarse_share`` of the calls left,
   a fixed subset (the same for every case, drawn from ``seed``) is scored instead. The best
   ``keep`` are rescored on all K samples.
3. Stage two: from the best K-scored configuration so far, each parameter in turn moves one step
   along its ladder (`SearchSpace.ladders`) while a neighbour scores strictly better; passes over
   the four parameters repeat until one moves nothing or the budget is spent.

The best configuration is the best K-scored one (ties go to the prior, then the coarse grid's
order, then the default).

`ExhaustiveSearch` scores a fixed list of configurations on K samples each: `LadderGrid` is the
whole ladder grid (the reference the two-stage search is measured against, `exhaustive_case`);
the grid plan's list is `hag_agent.search.grid_scoring.PlanGrid`.
"""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from hag_agent.data.search_records import GridResult, Stage
from hag_agent.data.suites import SuiteCase
from hag_agent.hyperparameters import HYPERPARAM_KEYS, HyperParams
from hag_agent.search.engine import Anchors, CaseEvaluator, Scored, SearchScope, evaluate_case
from hag_agent.search.sampling import Sampler, Scorer
from hag_agent.search.space import SEARCH_KEYS, SearchSettings

TieBreak = Callable[[HyperParams], float]
"""Among equal scores, the configuration with the lowest value wins."""


def best_of(scored: Sequence[Scored], tie_break: TieBreak | None = None) -> Scored | None:
    """The highest score; ties go to the lowest ``tie_break``, then to the earliest."""
    if tie_break is not None:
        return min(scored, key=lambda item: (-round(item[1], 12), tie_break(item[0])), default=None)
    best: Scored | None = None
    for item in scored:
        if best is None or item[1] > best[1] + 1e-12:
            best = item
    return best


@dataclass(frozen=True)
class _SettingsStrategy:
    """K, seed, budget and anchors from `SearchSettings`."""

    settings: SearchSettings

    @property
    def scope(self) -> SearchScope:
        """K, the base seed and the budget of the settings; the call limit is the strategy's."""
        settings = self.settings
        return SearchScope(settings.samples, settings.seed, settings.budget, self.call_limit())

    def call_limit(self) -> int | None:
        """The most samples a case may draw (None: no limit)."""
        return None

    def anchors(self, case: SuiteCase) -> Anchors:
        """The default and the prior with the case's held values."""
        return Anchors(self.settings.default_params(case), self.settings.prior_params(case))

    def held(self, case: SuiteCase) -> dict[str, float]:
        """The keys it does not search (min_p, max_tokens), at the case's values."""
        base = self.settings.base_params(case).model_dump()
        return {key: float(base[key]) for key in HYPERPARAM_KEYS if key not in SEARCH_KEYS}


@dataclass(frozen=True)
class TwoStageSearch(_SettingsStrategy):
    """The paper's search: a coarse grid, then greedy refinement (see the module docstring)."""

    def call_limit(self) -> int:
        """``budget * K``."""
        return self.settings.budget * self.settings.samples

    async def search(self, case: SuiteCase, evaluator: CaseEvaluator) -> Scored:
        """Anchors, stage one, then stage two; the best K-scored configuration."""
        k = self.settings.samples
        default, prior = self.anchors(case)
        anchors = await evaluator.score_many([default, prior], k, ("default", "prior"))
        rescored = await self._stage_one(case, evaluator)
        start = best_of([anchors[-1], *rescored, anchors[0]])
        assert start is not None
        return await self._stage_two(evaluator, start)

    async def _stage_one(self, case: SuiteCase, evaluator: CaseEvaluator) -> list[Scored]:
        """The coarse grid on c samples, within its share of the calls left; the best rescored."""
        settings = self.settings
        c = settings.coarse_samples
        grid = settings.space.grid(settings.base_params(case), "coarse")
        assert evaluator.call_limit is not None
        share = math.floor(settings.coarse_share * (evaluator.call_limit - evaluator.reserved))
        fit = share // c
        if fit < len(grid):
            picked = sorted(random.Random(settings.seed).sample(range(len(grid)), max(fit, 0)))
            grid = [grid[i] for i in picked]
        coarse = await evaluator.score_many(grid, c, "coarse")
        ranked = sorted(coarse, key=lambda item: -item[1])  # stable: grid order breaks ties
        survivors = [p for p, _ in ranked[: settings.keep]]
        return await evaluator.score_many(survivors, settings.samples, "rescore")

    async def _stage_two(self, evaluator: CaseEvaluator, start: Scored) -> Scored:
        """Greedy: one parameter at a time, one ladder step at a time."""
        current, current_score = start
        evaluator.exhausted = False
        moved = True
        while moved and not evaluator.exhausted:
            moved = False
            for key in SEARCH_KEYS:
                while not evaluator.exhausted:
                    neighbours = self.settings.space.neighbours(current, key)
                    step = best_of(await evaluator.score_many(neighbours, evaluator.k, "refine"))
                    if step is None or step[1] <= current_score + 1e-12:
                        break
                    current, current_score = step
                    moved = True
                if evaluator.exhausted:
                    break
        return current, current_score


class ExhaustiveSearch(ABC):
    """Scores a fixed list of configurations on K samples each and takes the best."""

    @abstractmethod
    def candidates(self, case: SuiteCase) -> list[tuple[HyperParams, Stage]]:
        """The configurations to score, in order, with their stage labels."""

    def tie_break(self, case: SuiteCase) -> TieBreak | None:
        """How equal scores are ordered (None: the earliest wins)."""
        del case
        return None

    async def search(self, case: SuiteCase, evaluator: CaseEvaluator) -> Scored | None:
        """Score every candidate that has samples; the best."""
        candidates = self.candidates(case)
        scored = await evaluator.score_many(
            [p for p, _ in candidates], evaluator.k, [s for _, s in candidates]
        )
        return best_of(scored, self.tie_break(case))


@dataclass(frozen=True)
class LadderGrid(ExhaustiveSearch, _SettingsStrategy):
    """Every configuration of the ladder grid (and the default), all labelled ``grid``."""

    def candidates(self, case: SuiteCase) -> list[tuple[HyperParams, Stage]]:
        """The ladder grid in product order, then the default when it is off the grid."""
        grid = self.settings.space.grid(self.settings.base_params(case), "ladders")
        default = self.settings.default_params(case)
        if all(default.key() != p.key() for p in grid):
            grid.append(default)
        return [(params, "grid") for params in grid]


async def exhaustive_case(
    case: SuiteCase,
    sampler: Sampler,
    settings: SearchSettings | None = None,
    *,
    scorer: Scorer | None = None,
    limiter: AbstractAsyncContextManager[Any] | None = None,
) -> GridResult:
    """Score every configuration of the ladder grid (and the default) on K samples.

    The reference the two-stage search is measured against: same seeds, same held values.
    """
    record = await evaluate_case(
        case, LadderGrid(settings or SearchSettings()), sampler, scorer=scorer, limiter=limiter
    )
    grid = [entry for entry in record.evaluated if entry.stage == "grid"]
    return GridResult(
        id=record.id,
        params=record.params,
        score=record.score,
        default_score=record.default_score,
        evaluations=len(grid),
        model_calls=len(grid) * record.samples,
        wall_s=record.wall_s,
        scores=grid,
    )


__all__ = [
    "ExhaustiveSearch",
    "LadderGrid",
    "TieBreak",
    "TwoStageSearch",
    "best_of",
    "exhaustive_case",
]
