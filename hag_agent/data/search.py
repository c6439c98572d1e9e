"""The paper's per-case hyperparameter search: a coarse grid, then greedy refinement.

Terms, used precisely throughout:

- **sample**: one model call under one configuration with one seed. Sample ``i`` of every
  configuration uses seed ``seed + i``, so configurations are compared on equal noise.
- **evaluation**: one configuration scored on all K samples, i.e. K model calls. A stage-one
  configuration scored on ``coarse_samples`` = c < K samples costs c/K of an evaluation.
  ``budget`` caps the evaluations of one case, i.e. its model calls at ``budget * K``; the
  evaluations spent are ``model_calls / K``. A sample already drawn (same configuration, same
  seed) is reused, never paid for twice.
- **score**: `hag_agent.metrics.score_outputs` over a configuration's samples (the mean metric;
  creative tasks add a diversity term, documented there).

Per case, with min_p held at ``space.min_p`` and max_tokens at the task prior's (or the
``max_tokens`` setting):

1. The default configuration (`DEFAULT_PARAMS`) and the task prior are always scored on K
   samples, first.
2. Stage one: the coarse grid over temperature, top_p, top_k and repetition_penalty is scored on
   c samples each. If it costs more than ``coarse_share`` of the calls left, a fixed subset (the
   same for every case, drawn from ``seed``) is scored instead. The best ``keep`` are rescored on
   all K samples.
3. Stage two: from the best K-scored configuration so far, each parameter in turn moves one step
   along its ladder (`SearchSpace.ladders`) while a neighbour scores strictly better; passes over
   the four parameters repeat until one moves nothing or the budget is spent.

The best configuration is the best K-scored one (ties go to the prior, then the coarse grid's
order, then the default).

The records are in `hag_agent.data.search_records`; the resumable run over a case file is
`hag_agent.data.search_run`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections.abc import Awaitable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

from hag_agent.data.sampling import Sampler, SampleResult, Scorer, default_scorer
from hag_agent.data.search_records import GridResult, ScoredConfig, SearchRecord, Stage
from hag_agent.data.search_space import SEARCH_KEYS, SearchSettings
from hag_agent.data.suites import SuiteCase
from hag_agent.hyperparameters import HyperParams

Result = TypeVar("Result")


class _CaseSearch:
    """The scoring machinery of one case: sample cache, budget and log."""

    def __init__(
        self,
        case: SuiteCase,
        sampler: Sampler,
        settings: SearchSettings,
        scorer: Scorer | None,
        limiter: AbstractAsyncContextManager[Any] | None,
        *,
        call_limit: int,
    ) -> None:
        self.case = case
        self.sampler = sampler
        self.settings = settings
        self.scorer = scorer or default_scorer()
        self.limiter = limiter or contextlib.nullcontext()
        self.call_limit = call_limit
        self.started = time.perf_counter()
        self.reserved = 0
        self.calls = 0
        self.tokens = 0
        self.exhausted = False
        self.samples: dict[tuple[tuple[float | int, ...], int], asyncio.Task[SampleResult]] = {}
        self.scores: dict[tuple[tuple[float | int, ...], int], float] = {}
        self.log: list[ScoredConfig] = []

    def cost(self, params: HyperParams, n: int) -> int:
        """Calls still needed to score ``params`` on ``n`` samples."""
        key = params.key()
        return sum(1 for i in range(n) if (key, self.settings.seed + i) not in self.samples)

    async def _sample(self, params: HyperParams, seed: int) -> SampleResult:
        async with self.limiter:
            result = await self.sampler(self.case, params, seed)
        self.calls += 1
        self.tokens += result.completion_tokens or 0
        return result

    def _reserve(self, params: HyperParams, n: int) -> bool:
        needed = self.cost(params, n)
        if self.reserved + needed > self.call_limit:
            self.exhausted = True
            return False
        self.reserved += needed
        key = params.key()
        for i in range(n):
            seed = self.settings.seed + i
            if (key, seed) not in self.samples:
                self.samples[key, seed] = asyncio.ensure_future(self._sample(params, seed))
        return True

    async def score_many(
        self, configs: Sequence[HyperParams], n: int, stage: Stage | Sequence[Stage]
    ) -> list[tuple[HyperParams, float]]:
        """Score configurations on ``n`` samples each, concurrently, as far as the budget goes.

        Configurations that do not fit the budget are left out (and mark it exhausted).
        ``stage`` labels them all, or each in turn.
        """
        stages = [stage] * len(configs) if isinstance(stage, str) else list(stage)
        chosen: list[tuple[HyperParams, Stage]] = []
        for params, label in zip(configs, stages, strict=True):
            if (params.key(), n) in self.scores or self._reserve(params, n):
                chosen.append((params, label))
        pending = [
            self.samples[p.key(), self.settings.seed + i] for p, _ in chosen for i in range(n)
        ]
        done = await asyncio.gather(*pending, return_exceptions=True)
        for outcome in done:
            if isinstance(outcome, BaseException):
                raise outcome
        results: list[tuple[HyperParams, float]] = []
        for params, label in chosen:
            score_key = (params.key(), n)
            if score_key not in self.scores:
                outputs = [
                    self.samples[params.key(), self.settings.seed + i].result().text
                    for i in range(n)
                ]
                self.scores[score_key] = float(self.scorer(self.case, outputs))
                self.log.append(
                    ScoredConfig(
                        params=params.model_dump(),
                        score=self.scores[score_key],
                        samples=n,
                        stage=label,
                    )
                )
            results.append((params, self.scores[score_key]))
        return results

    async def run(self, work: Awaitable[Result]) -> Result:
        """Await ``work``; if it fails, cancel the samples still running before re-raising."""
        try:
            return await work
        except BaseException:
            for task in self.samples.values():
                task.cancel()
            raise

    def wall_s(self) -> float:
        """Seconds since the case's search began."""
        return round(time.perf_counter() - self.started, 4)


def _best(scored: Sequence[tuple[HyperParams, float]]) -> tuple[HyperParams, float] | None:
    """The highest score; ties go to the earliest."""
    best: tuple[HyperParams, float] | None = None
    for item in scored:
        if best is None or item[1] > best[1] + 1e-12:
            best = item
    return best


async def search_case(
    case: SuiteCase,
    sampler: Sampler,
    settings: SearchSettings | None = None,
    *,
    scorer: Scorer | None = None,
    limiter: AbstractAsyncContextManager[Any] | None = None,
) -> SearchRecord:
    """Run the two-stage search on one case (see the module docstring).

    Args:
        case: The case.
        sampler: Makes one generation; its errors propagate.
        settings: Samples, budget, seeds and space.
        scorer: Turns K outputs into a score (default `hag_agent.metrics.score_outputs`).
        limiter: An async context manager around every call (e.g. a shared semaphore).

    Returns:
        The case's record.
    """
    settings = settings or SearchSettings()
    k, c = settings.samples, settings.coarse_samples
    state = _CaseSearch(case, sampler, settings, scorer, limiter, call_limit=settings.budget * k)
    params, score = await state.run(_search(state, settings, k, c))
    default = settings.default_params(case)
    prior = settings.prior_params(case)
    return SearchRecord(
        id=case.id,
        task=case.task.value,
        prompt=case.prompt,
        proposal=params.to_proposal_json(),
        params=params.model_dump(),
        score=score,
        default_score=state.scores[default.key(), k],
        prior_score=state.scores[prior.key(), k],
        evaluations=round(state.calls / k, 4),
        budget=settings.budget,
        model_calls=state.calls,
        completion_tokens=state.tokens,
        wall_s=state.wall_s(),
        samples=k,
        seed=settings.seed,
        evaluated=state.log,
    )


async def _search(
    state: _CaseSearch, settings: SearchSettings, k: int, c: int
) -> tuple[HyperParams, float]:
    case, space = state.case, settings.space
    base = settings.base_params(case)
    default = settings.default_params(case)
    prior = settings.prior_params(case)
    anchors = await state.score_many([default, prior], k, ("default", "prior"))
    default_scored, prior_scored = anchors[0], anchors[-1]

    # Stage one: the coarse grid on c samples, within its share of the calls left.
    grid = space.grid(base, "coarse")
    share = math.floor(settings.coarse_share * (state.call_limit - state.reserved))
    fit = share // c
    if fit < len(grid):
        picked = sorted(random.Random(settings.seed).sample(range(len(grid)), max(fit, 0)))
        grid = [grid[i] for i in picked]
    coarse = await state.score_many(grid, c, "coarse")
    ranked = sorted(coarse, key=lambda item: -item[1])  # stable: grid order breaks ties
    survivors = [p for p, _ in ranked[: settings.keep]]
    rescored = await state.score_many(survivors, k, "rescore")

    current_best = _best([prior_scored, *rescored, default_scored])
    assert current_best is not None
    current, current_score = current_best

    # Stage two: greedy, one parameter at a time, one ladder step at a time.
    state.exhausted = False
    moved = True
    while moved and not state.exhausted:
        moved = False
        for key in SEARCH_KEYS:
            while not state.exhausted:
                scored = await state.score_many(space.neighbours(current, key), k, "refine")
                step = _best(scored)
                if step is None or step[1] <= current_score + 1e-12:
                    break
                current, current_score = step
                moved = True
            if state.exhausted:
                break
    return current, current_score


async def exhaustive_case(
    case: SuiteCase,
    sampler: Sampler,
    settings: SearchSettings | None = None,
    *,
    scorer: Scorer | None = None,
    limiter: AbstractAsyncContextManager[Any] | None = None,
) -> GridResult:
    """Score every configuration of the ladder grid (and the default) on K samples.

    The reference the search is measured against: same seeds, same held values.
    """
    settings = settings or SearchSettings()
    k = settings.samples
    grid = settings.space.grid(settings.base_params(case), "ladders")
    default = settings.default_params(case)
    if all(default.key() != p.key() for p in grid):
        grid.append(default)
    state = _CaseSearch(case, sampler, settings, scorer, limiter, call_limit=len(grid) * k)
    scored = await state.run(state.score_many(grid, k, "grid"))
    best = _best(scored)
    assert best is not None
    default_score = next(s for p, s in scored if p.key() == default.key())
    return GridResult(
        id=case.id,
        params=best[0].model_dump(),
        score=best[1],
        default_score=default_score,
        evaluations=len(grid),
        model_calls=state.calls,
        wall_s=state.wall_s(),
        scores=state.log,
    )


__all__ = ["exhaustive_case", "search_case"]
