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
order, then the default). Results are appended to a JSONL file, one `SearchRecord` per case,
flushed and synced as each case finishes, so an interrupted run resumes without redoing any.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import os
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Literal

from langchain_core.messages import HumanMessage
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from hag_agent.backends.base import Backend, tagged
from hag_agent.data.suites import SuiteCase
from hag_agent.errors import HAGError
from hag_agent.hyperparameters import DecodingBounds, HyperParams
from hag_agent.tasks import DEFAULT_PARAMS, TASK_PRIORS

SEARCH_KEYS: tuple[str, ...] = ("temperature", "top_p", "top_k", "repetition_penalty")
"""The four hyperparameters the paper searches (and generates)."""

Stage = Literal["default", "prior", "coarse", "rescore", "refine", "grid"]


# -- the sampler protocol ---------------------------------------------------------------------


class SampleResult(BaseModel):
    """One generation: its text and what it cost."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str
    """The generated text."""
    completion_tokens: int | None = None
    """Generated tokens, when the backend reports them."""
    latency_s: float = 0.0
    """Wall time of the call."""


Sampler = Callable[[SuiteCase, HyperParams, int], Awaitable[SampleResult]]
"""``sampler(case, params, seed)``: one generation for a case under a configuration."""

Scorer = Callable[[SuiteCase, Sequence[str]], float]
"""``scorer(case, outputs)``: K samples' outputs -> score in [0, 1]."""


class BackendSampler:
    """The real `Sampler`: one generation call through a hag_agent `Backend`.

    The prompt is sent as one human message, as `HAGRunnable` sends it, with every sampling value
    explicit (`Backend.call_kwargs`) and the sample's seed. No prompt cache is shared between
    calls, so a sample depends only on (prompt, configuration, seed).
    """

    def __init__(self, backend: Backend) -> None:
        """Wrap a resolved backend."""
        self.backend = backend

    async def __call__(self, case: SuiteCase, params: HyperParams, seed: int) -> SampleResult:
        """Generate once; a failed call raises `BackendError`."""
        generation = await self.backend.agenerate(
            [HumanMessage(case.prompt)], params, seed=seed, config=tagged(None, "generate")
        )
        return SampleResult(
            text=generation.text,
            completion_tokens=generation.completion_tokens,
            latency_s=generation.latency_s,
        )


def backend_sampler(
    backend: str | None = None,
    options: Mapping[str, Any] | None = None,
    *,
    chat_model: Any = None,
) -> BackendSampler:
    """A `BackendSampler` for a backend given by name and options, as `HAGRunnable` resolves it.

    Args:
        backend: Registry name (``embedded``, ``vllm``, ``llamacpp-server`` or a plugin's);
            None leaves it to ``HAG_BACKEND`` or the default (embedded).
        options: The backend's options (``base_url``, ``model``, ``model_path`` ...).
        chat_model: A `Backend` or LangChain chat model; overrides ``backend``.

    Raises:
        ConfigurationError: For an unknown backend or one that cannot be set up.
        InvalidSettingsError: For a bad option.
    """
    from hag_agent.backends.registry import resolve_backend
    from hag_agent.context import resolve_context

    context = resolve_context(
        {
            "backend": backend,
            "backend_options": dict(options or {}) or None,
            "chat_model": chat_model,
        }
    )
    return BackendSampler(resolve_backend(context))


def default_scorer() -> Scorer:
    """`hag_agent.metrics.score_outputs` (imported on first use)."""
    from hag_agent.metrics import score_outputs

    return score_outputs


# -- the space ---------------------------------------------------------------------------------


def _order(key: str, value: float) -> float:
    """Sort position of a value on its ladder: top_k 0 (off) is the widest, after every k."""
    return math.inf if key == "top_k" and value == 0 else float(value)


def _tenths(low: int, high: int) -> tuple[float, ...]:
    return tuple(round(i / 10, 1) for i in range(low, high + 1))


class SearchSpace(BaseModel):
    """The ladders the search moves along and the coarse grid it starts from.

    Each ladder lists one parameter's values in increasing order (top_k 0, meaning off, counts
    as the widest and comes last). Coarse values must lie on their ladder.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    ladders: dict[str, tuple[float, ...]] = Field(
        default_factory=lambda: {
            "temperature": _tenths(0, 15),
            "top_p": (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0),
            "top_k": (1, 5, 10, 20, 40, 80, 160, 0),
            "repetition_penalty": (1.0, 1.05, 1.1, 1.15, 1.2, 1.3, 1.4, 1.5),
        }
    )
    """The fine values of each searched parameter (stage two's steps)."""
    coarse: dict[str, tuple[float, ...]] = Field(
        default_factory=lambda: {
            "temperature": (0.2, 0.7, 1.2),
            "top_p": (0.7, 0.9, 1.0),
            "top_k": (10, 40, 0),
            "repetition_penalty": (1.0, 1.2),
        }
    )
    """The stage-one grid: the product of these values."""
    min_p: float = Field(default=0.0, ge=0.0, le=1.0)
    """The min_p every searched configuration holds."""

    @model_validator(mode="after")
    def _consistent(self) -> SearchSpace:
        bounds = DecodingBounds()
        for table in ("ladders", "coarse"):
            values_by_key: dict[str, tuple[float, ...]] = getattr(self, table)
            if set(values_by_key) != set(SEARCH_KEYS):
                raise ValueError(f"{table} must have exactly the keys {', '.join(SEARCH_KEYS)}")
            for key, values in values_by_key.items():
                if not values:
                    raise ValueError(f"{table}.{key} is empty")
                for v in values:
                    bounds.check({key: v}, what=f"{table}.{key}")
                order = [_order(key, v) for v in values]
                if order != sorted(set(order)):
                    raise ValueError(f"{table}.{key} must increase (top_k 0 = off comes last)")
        for key, values in self.coarse.items():
            missing = [v for v in values if v not in self.ladders[key]]
            if missing:
                raise ValueError(f"coarse.{key} values {missing} are not on the ladder")
        return self

    def configure(self, base: HyperParams, values: Mapping[str, float]) -> HyperParams:
        """``base`` with the searched values replaced (integers kept integral)."""
        update: dict[str, float | int] = {
            k: int(v) if k == "top_k" else float(v) for k, v in values.items()
        }
        return base.model_copy(update=update)

    def grid(self, base: HyperParams, table: Literal["coarse", "ladders"]) -> list[HyperParams]:
        """Every configuration of a grid, in product order."""
        values_by_key: dict[str, tuple[float, ...]] = getattr(self, table)
        axes = [values_by_key[k] for k in SEARCH_KEYS]
        return [
            self.configure(base, dict(zip(SEARCH_KEYS, combo, strict=True)))
            for combo in itertools.product(*axes)
        ]

    def grid_size(self, table: Literal["coarse", "ladders"]) -> int:
        """How many configurations a grid has."""
        values_by_key: dict[str, tuple[float, ...]] = getattr(self, table)
        return math.prod(len(values_by_key[k]) for k in SEARCH_KEYS)

    def position(self, key: str, value: float) -> int:
        """The ladder index of a value, or of the nearest rung when it is off the ladder."""
        ladder = self.ladders[key]
        if value in ladder:
            return ladder.index(value)
        target = _order(key, value)
        if not math.isfinite(target):  # top_k off, not on this ladder: the widest rung
            return len(ladder) - 1
        return min(range(len(ladder)), key=lambda i: abs(_order(key, ladder[i]) - target))

    def neighbours(self, params: HyperParams, key: str) -> list[HyperParams]:
        """The configurations one ladder step either side of ``params`` along ``key``."""
        ladder = self.ladders[key]
        value = float(getattr(params, key))
        index = self.position(key, value)
        result: list[HyperParams] = []
        if ladder[index] != value:  # off the ladder: its nearest rung is a neighbour too
            result.append(self.configure(params, {key: ladder[index]}))
        for step in (-1, 1):
            j = index + step
            if 0 <= j < len(ladder) and ladder[j] != value:
                result.append(self.configure(params, {key: ladder[j]}))
        return result


class SearchSettings(BaseModel):
    """How hard to search each case."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    samples: int = Field(default=3, ge=1, le=64)
    """K: samples per configuration (seeds ``seed .. seed+K-1``)."""
    coarse_samples: int = Field(default=1, ge=1, le=64)
    """Samples per stage-one configuration (at most K; the first seeds of the K)."""
    keep: int = Field(default=3, ge=1, le=64)
    """Stage-one survivors rescored on K samples."""
    budget: int = Field(default=40, ge=2, le=1_000_000)
    """Maximum evaluations per case (an evaluation = K model calls); at least 2, for the
    default and the prior."""
    coarse_share: float = Field(default=0.5, gt=0.0, le=1.0)
    """The share of the calls left after default and prior that stage one may spend."""
    seed: int = Field(default=0, ge=0)
    """Base seed: sample ``i`` uses ``seed + i``; also draws the stage-one subset."""
    max_tokens: int | None = Field(default=None, ge=1)
    """Held max_tokens for every configuration; None uses the task prior's."""
    space: SearchSpace = Field(default_factory=SearchSpace)
    """Ladders and coarse grid."""

    @model_validator(mode="after")
    def _coarse_at_most_k(self) -> SearchSettings:
        if self.coarse_samples > self.samples:
            raise ValueError("coarse_samples must not exceed samples")
        return self

    def base_params(self, case: SuiteCase) -> HyperParams:
        """The values a case's searched configurations hold fixed (min_p, max_tokens)."""
        prior = TASK_PRIORS[case.task]
        return DEFAULT_PARAMS.model_copy(
            update={"min_p": self.space.min_p, "max_tokens": self.max_tokens or prior.max_tokens}
        )

    def default_params(self, case: SuiteCase) -> HyperParams:
        """`DEFAULT_PARAMS` with the case's held max_tokens."""
        return DEFAULT_PARAMS.model_copy(update={"max_tokens": self.base_params(case).max_tokens})

    def prior_params(self, case: SuiteCase) -> HyperParams:
        """The task prior with the case's held max_tokens."""
        prior = TASK_PRIORS[case.task]
        return prior.model_copy(update={"max_tokens": self.base_params(case).max_tokens})


# -- records -------------------------------------------------------------------------------------


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


# -- one case ------------------------------------------------------------------------------------


class _CaseSearch:
    """The scoring machinery of one case: sample cache, budget and log."""

    def __init__(
        self,
        case: SuiteCase,
        sampler: Sampler,
        settings: SearchSettings,
        scorer: Scorer,
        limiter: AbstractAsyncContextManager[Any],
        *,
        call_limit: int,
    ) -> None:
        self.case = case
        self.sampler = sampler
        self.settings = settings
        self.scorer = scorer
        self.limiter = limiter
        self.call_limit = call_limit
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

    def cancel(self) -> None:
        """Cancel samples still running (after a failure)."""
        for task in self.samples.values():
            task.cancel()


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
    state = _CaseSearch(
        case,
        sampler,
        settings,
        scorer or default_scorer(),
        limiter or contextlib.nullcontext(),
        call_limit=settings.budget * k,
    )
    start = time.perf_counter()
    try:
        best = await _search(state, settings, k, c)
    except BaseException:
        state.cancel()
        raise
    params, score = best
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
        wall_s=round(time.perf_counter() - start, 4),
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
    state.exhausted = False
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
    state = _CaseSearch(
        case,
        sampler,
        settings,
        scorer or default_scorer(),
        limiter or contextlib.nullcontext(),
        call_limit=len(grid) * k,
    )
    start = time.perf_counter()
    try:
        scored = await state.score_many(grid, k, "grid")
    except BaseException:
        state.cancel()
        raise
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
        wall_s=round(time.perf_counter() - start, 4),
        scores=state.log,
    )


# -- the resumable run ---------------------------------------------------------------------------


class SearchRun(BaseModel):
    """What one `run_search` call did."""

    model_config = ConfigDict(extra="forbid")

    output: str
    """The JSONL file."""
    total: int
    """Cases given."""
    skipped: list[str] = Field(default_factory=list)
    """Case ids that already had a record (not redone)."""
    completed: list[str] = Field(default_factory=list)
    """Case ids finished and written by this run."""
    failed: dict[str, str] = Field(default_factory=dict)
    """Case ids whose search failed, with the error (no record written)."""
    stopped: bool = False
    """The run stopped early after a failure (``stop_on_error``)."""
    model_calls: int = 0
    """Generation calls made by this run's finished cases."""
    wall_s: float = 0.0
    """Wall time of the run."""

    @property
    def not_run(self) -> int:
        """Cases neither skipped, completed nor failed (left after a stop)."""
        return self.total - len(self.skipped) - len(self.completed) - len(self.failed)


def read_records(
    path: str | Path, *, warn: Callable[[str], None] | None = None
) -> list[SearchRecord]:
    """The records of a search JSONL file.

    A partial last line (a run killed mid-write) is ignored; any other unreadable line is
    reported through ``warn`` with its line number and skipped.
    """
    records: list[SearchRecord] = []
    for _, record in _scan(Path(path), warn):
        records.append(record)
    return records


def _scan(path: Path, warn: Callable[[str], None] | None) -> Iterator[tuple[int, SearchRecord]]:
    if not path.exists():
        return
    data = path.read_bytes()
    lines = data.split(b"\n")
    complete = lines[:-1]  # the part after the last newline, if any, is a partial line
    for number, raw in enumerate(complete, start=1):
        if not raw.strip():
            continue
        try:
            yield number, SearchRecord.model_validate_json(raw)
        except ValidationError as exc:
            if warn is not None:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first.get("loc", ())) or "record"
                warn(f"{path}:{number}: not a search record ({where}: {first.get('msg')}); skipped")
    if lines[-1].strip() and warn is not None:
        warn(f"{path}:{len(lines)}: partial last line (an interrupted write); dropped")


def _prepare_output(path: Path, warn: Callable[[str], None] | None) -> set[str]:
    """The ids already recorded; a partial last line is cut off so appends stay line-aligned."""
    done = {record.id for _, record in _scan(path, warn)}
    if path.exists():
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            with path.open("r+b") as handle:
                handle.truncate(data.rfind(b"\n") + 1)
                handle.flush()
                os.fsync(handle.fileno())
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
    return done


def append_line(path: Path, text: str) -> None:
    """Append one line and make it durable (flush + fsync) before returning."""
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def progress_bar(console: Console | None, *, enabled: bool) -> Progress:
    """A rich progress bar with ETA on stderr; disabled when asked or not on a terminal."""
    console = console or Console(stderr=True)
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        disable=not (enabled and console.is_terminal),
        transient=False,
    )


async def run_search(
    cases: Sequence[SuiteCase],
    sampler: Sampler,
    output: str | Path,
    settings: SearchSettings | None = None,
    *,
    concurrency: int = 1,
    stop_on_error: bool = False,
    scorer: Scorer | None = None,
    show_progress: bool = False,
    console: Console | None = None,
    warn: Callable[[str], None] | None = None,
    on_failure: Callable[[str, str], None] | None = None,
) -> SearchRun:
    """Search every case and append one record per finished case to ``output``.

    Cases that already have a record in ``output`` are skipped, so rerunning the same command
    after an interruption redoes nothing. At most ``concurrency`` model calls run at once (and
    at most that many cases are in progress). A case whose sampler raises a `HAGError` (a
    backend failure) gets no record; the run goes on, or stops taking new cases when
    ``stop_on_error``. Other exceptions (bugs, Ctrl-C) propagate; finished records are kept.

    Args:
        cases: The cases (duplicate ids after the first are ignored).
        sampler: Makes one generation.
        output: The JSONL file (created, or appended to).
        settings: Search settings.
        concurrency: Maximum model calls in flight.
        stop_on_error: Stop after the first failed case.
        scorer: Turns K outputs into a score (default `hag_agent.metrics.score_outputs`).
        show_progress: Show a progress bar (only on a terminal).
        console: Where the progress bar goes (stderr by default).
        warn: Receives messages about unreadable lines of ``output``.
        on_failure: Called with (case id, error) for each failed case.

    Returns:
        What was skipped, completed and failed.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    settings = settings or SearchSettings()
    scorer = scorer or default_scorer()
    path = Path(output)
    start = time.perf_counter()
    done = _prepare_output(path, warn)
    seen: set[str] = set()
    unique: list[SuiteCase] = []
    for case in cases:
        if case.id not in seen:
            seen.add(case.id)
            unique.append(case)
    run = SearchRun(output=str(path), total=len(unique))
    run.skipped = [c.id for c in unique if c.id in done]
    queue = [c for c in unique if c.id not in done]
    limiter = asyncio.Semaphore(concurrency)
    stop = asyncio.Event()
    position = 0

    with progress_bar(console, enabled=show_progress) as progress:
        bar = progress.add_task("search", total=len(queue), note="")

        async def worker() -> None:
            nonlocal position
            while not stop.is_set() and position < len(queue):
                case = queue[position]
                position += 1
                try:
                    record = await search_case(
                        case, sampler, settings, scorer=scorer, limiter=limiter
                    )
                except HAGError as exc:
                    run.failed[case.id] = str(exc)
                    if on_failure is not None:
                        on_failure(case.id, str(exc))
                    if stop_on_error:
                        stop.set()
                else:
                    append_line(path, record.model_dump_json())
                    run.completed.append(case.id)
                    run.model_calls += record.model_calls
                progress.update(
                    bar, advance=1, note=f"{run.model_calls} calls, {len(run.failed)} failed"
                )

        workers = [asyncio.ensure_future(worker()) for _ in range(min(concurrency, len(queue)))]
        try:
            outcomes = await asyncio.gather(*workers, return_exceptions=True)
        except BaseException:
            for task in workers:
                task.cancel()
            raise
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
    run.stopped = stop.is_set() and run.not_run > 0
    run.wall_s = round(time.perf_counter() - start, 3)
    return run


def search_file(
    cases: Sequence[SuiteCase],
    sampler: Sampler,
    output: str | Path,
    settings: SearchSettings | None = None,
    **options: Any,
) -> SearchRun:
    """Synchronous `run_search` (starts its own event loop)."""
    return asyncio.run(run_search(cases, sampler, output, settings, **options))


def records_by_id(path: str | Path) -> dict[str, SearchRecord]:
    """A search file's records by case id (the last record of an id wins)."""
    return {record.id: record for record in read_records(path)}


__all__ = [
    "SEARCH_KEYS",
    "BackendSampler",
    "Comparison",
    "GridResult",
    "SampleResult",
    "Sampler",
    "ScoredConfig",
    "Scorer",
    "SearchRecord",
    "SearchRun",
    "SearchSettings",
    "SearchSpace",
    "append_line",
    "backend_sampler",
    "compare",
    "exhaustive_case",
    "read_records",
    "records_by_id",
    "run_search",
    "search_case",
    "search_file",
]
