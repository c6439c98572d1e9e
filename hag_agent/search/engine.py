"""The search engine: one function that scores configurations for a case and returns its record.

What to evaluate comes in three plug-ins: a `Strategy` chooses the configurations (the paper's
two-stage search or an exhaustive grid, `hag_agent.search.strategies`), a `Sampler` makes each
sample (a served or embedded model, or files the GPU grid sampler wrote,
`hag_agent.search.sampling`) and a `Scorer` turns a configuration's samples into a score.
`evaluate_case` runs one case; where many cases run is an executor's business
(`hag_agent.search.executor`).

Terms, used precisely throughout:

- **sample**: one generation under one configuration with one seed. Sample ``i`` of every
  configuration uses seed ``seed + i``, so configurations are compared on equal noise.
- **evaluation**: one configuration scored on all K samples, i.e. K samples. A configuration
  scored on c < K samples costs c/K of an evaluation. The evaluations spent are
  ``model_calls / K``. A sample already drawn (same configuration, same seed) is reused, never
  paid for twice.
- **score**: the scorer over a configuration's samples (by default
  `hag_agent.metrics.score_outputs`: the mean metric; creative tasks add a diversity term).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, TypeVar

from hag_agent.data.search_records import ScoredConfig, SearchRecord, Stage
from hag_agent.data.suites import SuiteCase
from hag_agent.hyperparameters import HyperParams
from hag_agent.search.sampling import MissingSample, Sampler, SampleResult, Scorer, default_scorer

Result = TypeVar("Result")
Scored = tuple[HyperParams, float]
"""A configuration and its score."""
_SampleKey = tuple[tuple[float | int, ...], int]


class Anchors(NamedTuple):
    """The two configurations every record reports a score for."""

    default: HyperParams
    """`DEFAULT_PARAMS` (with the case's held values)."""
    prior: HyperParams
    """The case's task prior (with the case's held values)."""


@dataclass(frozen=True)
class SearchScope:
    """How a strategy samples: K, the seeds, the budget its records state, the call limit."""

    samples: int
    """K: samples per full evaluation."""
    seed: int
    """Base seed: sample ``i`` uses ``seed + i``."""
    budget: int
    """The evaluation budget the record states."""
    call_limit: int | None = None
    """The most samples a case may draw (None: no limit)."""


class Strategy(Protocol):
    """Which configurations to score for a case, and which is best."""

    @property
    def scope(self) -> SearchScope:
        """K, the seeds, the budget and the call limit."""

    def anchors(self, case: SuiteCase) -> Anchors:
        """The case's default and prior configurations."""

    def held(self, case: SuiteCase) -> dict[str, float]:
        """The values every configuration it explores for the case holds.

        They are the record's ``fixed``: what a proposer trained on the record cannot learn.
        """

    async def search(self, case: SuiteCase, evaluator: CaseEvaluator) -> Scored | None:
        """Score configurations through ``evaluator``; the best (None if nothing was scored)."""


class CaseEvaluator:
    """One case's scoring machinery: sample cache, call budget and the log of scores."""

    def __init__(
        self,
        case: SuiteCase,
        sampler: Sampler,
        scorer: Scorer | None,
        limiter: AbstractAsyncContextManager[Any] | None,
        scope: SearchScope,
    ) -> None:
        """Prepare an empty cache for ``case``, sampling as ``scope`` says."""
        self.case = case
        self.sampler = sampler
        self.scorer = scorer or default_scorer()
        self.limiter = limiter or contextlib.nullcontext()
        self.k = scope.samples
        self.seed = scope.seed
        self.call_limit = scope.call_limit
        self.started = time.perf_counter()
        self.reserved = 0
        self.calls = 0
        self.tokens = 0
        self.exhausted = False
        self.samples: dict[_SampleKey, asyncio.Task[SampleResult]] = {}
        self.scores: dict[tuple[tuple[float | int, ...], int], float] = {}
        self.log: list[ScoredConfig] = []

    def cost(self, params: HyperParams, n: int) -> int:
        """Calls still needed to score ``params`` on ``n`` samples."""
        key = params.key()
        return sum(1 for i in range(n) if (key, self.seed + i) not in self.samples)

    def scored(self, params: HyperParams) -> bool:
        """Whether ``params`` has a score on K samples."""
        return (params.key(), self.k) in self.scores

    async def _sample(self, params: HyperParams, seed: int) -> SampleResult:
        async with self.limiter:
            result = await self.sampler(self.case, params, seed)
        self.calls += 1
        self.tokens += result.completion_tokens or 0
        return result

    def _reserve(self, params: HyperParams, n: int) -> bool:
        needed = self.cost(params, n)
        if self.call_limit is not None and self.reserved + needed > self.call_limit:
            self.exhausted = True
            return False
        self.reserved += needed
        key = params.key()
        for i in range(n):
            if (key, self.seed + i) not in self.samples:
                self.samples[key, self.seed + i] = asyncio.ensure_future(
                    self._sample(params, self.seed + i)
                )
        return True

    async def score_many(
        self, configs: Sequence[HyperParams], n: int, stage: Stage | Sequence[Stage]
    ) -> list[Scored]:
        """Score configurations on ``n`` samples each, concurrently, as far as the budget goes.

        Configurations that do not fit the budget are left out (and mark it exhausted), and so
        are those with a `MissingSample`. ``stage`` labels them all, or each in turn.
        """
        stages = [stage] * len(configs) if isinstance(stage, str) else list(stage)
        chosen = [
            (params, label)
            for params, label in zip(configs, stages, strict=True)
            if (params.key(), n) in self.scores or self._reserve(params, n)
        ]
        pending = [self.samples[p.key(), self.seed + i] for p, _ in chosen for i in range(n)]
        for outcome in await asyncio.gather(*pending, return_exceptions=True):
            if isinstance(outcome, BaseException) and not isinstance(outcome, MissingSample):
                raise outcome
        results: list[Scored] = []
        for params, label in chosen:
            score = self._score(params, n, label)
            if score is not None:
                results.append((params, score))
        return results

    def _score(self, params: HyperParams, n: int, stage: Stage) -> float | None:
        """The score of drawn samples, logged the first time; None if a sample is missing."""
        score_key = (params.key(), n)
        if score_key not in self.scores:
            tasks = [self.samples[params.key(), self.seed + i] for i in range(n)]
            if any(task.exception() is not None for task in tasks):
                return None
            outputs = [task.result().text for task in tasks]
            self.scores[score_key] = float(self.scorer(self.case, outputs))
            self.log.append(
                ScoredConfig(
                    params=params.model_dump(), score=self.scores[score_key], samples=n, stage=stage
                )
            )
        return self.scores[score_key]

    async def run(self, work: Awaitable[Result]) -> Result:
        """Await ``work``; if it fails, cancel the samples still running before re-raising."""
        try:
            return await work
        except BaseException:
            for task in self.samples.values():
                task.cancel()
            raise

    def wall_s(self) -> float:
        """Seconds since the case's evaluation began."""
        return round(time.perf_counter() - self.started, 4)


async def evaluate_case(
    case: SuiteCase,
    strategy: Strategy,
    sampler: Sampler,
    *,
    scorer: Scorer | None = None,
    limiter: AbstractAsyncContextManager[Any] | None = None,
) -> SearchRecord:
    """Search one case with ``strategy``, drawing samples from ``sampler``: the case's record.

    The default and the prior are scored on K samples whatever the strategy does (a strategy that
    did not score them has them scored after it, outside its budget): every record states both.

    Args:
        case: The case.
        strategy: Chooses the configurations and the best.
        sampler: Makes one sample; its errors propagate, except `MissingSample`.
        scorer: Turns K outputs into a score (default `hag_agent.metrics.score_outputs`).
        limiter: An async context manager around every sample (e.g. a shared semaphore).

    Raises:
        MissingSample: When the default or the prior has no samples (a file-backed sampler).
    """
    scope = strategy.scope
    evaluator = CaseEvaluator(case, sampler, scorer, limiter, scope)
    params, score = await evaluator.run(_search_with_anchors(case, strategy, evaluator))
    anchors = strategy.anchors(case)
    k = evaluator.k
    return SearchRecord(
        id=case.id,
        task=case.task.value,
        prompt=case.prompt,
        proposal=params.to_proposal_json(),
        params=params.model_dump(),
        score=score,
        default_score=evaluator.scores[anchors.default.key(), k],
        prior_score=evaluator.scores[anchors.prior.key(), k],
        evaluations=round(evaluator.calls / k, 4),
        budget=scope.budget,
        model_calls=evaluator.calls,
        completion_tokens=evaluator.tokens,
        wall_s=evaluator.wall_s(),
        samples=k,
        seed=scope.seed,
        evaluated=evaluator.log,
        fixed=strategy.held(case),
    )


async def _search_with_anchors(
    case: SuiteCase, strategy: Strategy, evaluator: CaseEvaluator
) -> Scored:
    best = await strategy.search(case, evaluator)
    anchors = strategy.anchors(case)
    labels: tuple[Stage, Stage] = ("default", "prior")
    missing = [(p, s) for p, s in zip(anchors, labels, strict=True) if not evaluator.scored(p)]
    if missing:
        evaluator.call_limit = None  # the record needs them, whatever the budget
        await evaluator.score_many([p for p, _ in missing], evaluator.k, [s for _, s in missing])
    if best is None or not all(evaluator.scored(p) for p in anchors):
        raise MissingSample(f"{case.id}: no samples under the default or the prior")
    return best


@dataclass(frozen=True)
class SearchJob:
    """What to evaluate on each case: a strategy, a sampler and a scorer."""

    strategy: Strategy
    """Chooses the configurations."""
    sampler: Sampler
    """Makes the samples."""
    scorer: Scorer | None = None
    """Scores them (default `hag_agent.metrics.score_outputs`)."""

    async def __call__(
        self, case: SuiteCase, limiter: AbstractAsyncContextManager[Any] | None = None
    ) -> SearchRecord:
        """`evaluate_case` on ``case``."""
        return await evaluate_case(
            case, self.strategy, self.sampler, scorer=self.scorer, limiter=limiter
        )


__all__ = ["Anchors", "CaseEvaluator", "Scored", "SearchJob", "Strategy", "evaluate_case"]
