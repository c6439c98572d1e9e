"""The one search engine: both strategies and both samplers plug into `evaluate_case`."""

from __future__ import annotations

import ast
import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hag_agent.data.search_records import SearchRecord, read_records
from hag_agent.data.suites import SuiteCase
from hag_agent.errors import HAGError
from hag_agent.hyperparameters import HyperParams
from hag_agent.search.engine import (
    Anchors,
    CaseEvaluator,
    Scored,
    SearchJob,
    SearchScope,
    evaluate_case,
)
from hag_agent.search.executor import OnCaseDone
from hag_agent.search.grid_plan import build_plan
from hag_agent.search.grid_samples import PrecomputedSampler, SampledPlan
from hag_agent.search.grid_scoring import PlanGrid, score_plan
from hag_agent.search.run import search_file
from hag_agent.search.sampling import MissingSample, SampleResult
from hag_agent.search.space import SearchSettings, SearchSpace
from hag_agent.search.strategies import LadderGrid, TwoStageSearch, exhaustive_case
from hag_agent.tasks import TaskKind

CASES = [
    SuiteCase(id="m1", task=TaskKind.MATH, prompt="What is 2+2?", answer="4"),
    SuiteCase(id="m2", task=TaskKind.MATH, prompt="What is 3+3?", answer="6"),
    SuiteCase(id="r1", task=TaskKind.REASONING, prompt="Heads?", answer="yes"),
]
SMALL = SearchSpace(
    ladders={
        "temperature": (0.0, 0.4, 1.0),
        "top_p": (0.8, 1.0),
        "top_k": (20, 0),
        "repetition_penalty": (1.0, 1.1),
    },
    coarse={
        "temperature": (0.0, 1.0),
        "top_p": (1.0,),
        "top_k": (0,),
        "repetition_penalty": (1.0,),
    },
)


def noise(case: SuiteCase, params: HyperParams, seed: int) -> str:
    """A number that depends only on (case, configuration, seed), like a real sample."""
    return f"{random.Random(f'{case.id}{params.key()}{seed}').random():.6f}"


async def fake_sampler(case: SuiteCase, params: HyperParams, seed: int) -> SampleResult:
    return SampleResult(text=noise(case, params, seed), completion_tokens=2)


def mean_scorer(case: SuiteCase, outputs: Sequence[str]) -> float:
    del case
    return sum(float(text) for text in outputs) / len(outputs)


def presampled(plan_samples: int, seed: int) -> tuple[PlanGrid, SampledPlan]:
    """A plan over CASES and, for every configuration, the fake sampler's texts."""
    plan = build_plan(CASES, samples=plan_samples, max_tokens=8, seed=seed)
    samples = {
        index: {
            case.id: [noise(case, plan.params(index), plan.seed + i) for i in range(plan.samples)]
            for case in CASES
        }
        for index in range(len(plan.configs))
    }
    return PlanGrid(plan), samples


def without_timing(record: SearchRecord) -> dict[str, object]:
    return record.model_dump(exclude={"wall_s", "completion_tokens"})


def test_stored_samples_and_the_live_sampler_give_the_same_records() -> None:
    """Grid scoring is the exhaustive strategy with a file-backed sampler: same engine, same best."""
    strategy, samples = presampled(plan_samples=2, seed=3)
    stored = score_plan(strategy.plan, CASES, samples, scorer=mean_scorer)
    live = [
        asyncio.run(evaluate_case(case, strategy, fake_sampler, scorer=mean_scorer))
        for case in CASES
    ]
    assert [without_timing(r) for r in stored] == [without_timing(r) for r in live]
    # The plan's grid held min_p (the default's) and max_tokens: the records say so.
    assert {str(r.fixed) for r in stored} == {str({"min_p": 0.0, "max_tokens": 8.0})}
    assert all(r.completion_tokens == 2 * r.model_calls for r in live)
    for record in live:  # the best really is the best of everything the plan offered
        assert record.score == max(entry.score for entry in record.evaluated)
        assert record.evaluations == len(record.evaluated)


def test_both_strategies_run_on_one_sampler_through_the_engine() -> None:
    settings = SearchSettings(samples=2, budget=12, space=SMALL)
    case = CASES[0]
    two_stage = asyncio.run(
        evaluate_case(case, TwoStageSearch(settings), fake_sampler, scorer=mean_scorer)
    )
    grid = asyncio.run(evaluate_case(case, LadderGrid(settings), fake_sampler, scorer=mean_scorer))
    assert two_stage.evaluations <= 12 < grid.evaluations
    assert {e.stage for e in grid.evaluated} == {"grid", "prior"}
    assert grid.evaluated[-1].stage == "prior"  # scored by the engine, after the grid
    assert (two_stage.default_score, two_stage.prior_score) == (
        grid.default_score,
        grid.prior_score,
    )
    searched = {HyperParams.model_validate(e.params).key() for e in two_stage.evaluated}
    on_grid = {HyperParams.model_validate(e.params).key(): e.score for e in grid.evaluated}
    assert grid.score >= max(s for k, s in on_grid.items() if k in searched)
    reference = asyncio.run(exhaustive_case(case, fake_sampler, settings, scorer=mean_scorer))
    assert reference.params == grid.params and reference.score == grid.score
    assert reference.evaluations == len(grid.evaluated) - 1  # the prior is not a grid point
    assert reference.model_calls == reference.evaluations * 2


@dataclass(frozen=True)
class PriorOnly:
    """A third strategy, written against the protocol alone: score the prior and stop."""

    scope: SearchScope = field(default_factory=lambda: SearchScope(2, 0, budget=1, call_limit=2))

    def anchors(self, case: SuiteCase) -> Anchors:
        settings = SearchSettings(samples=self.scope.samples)
        return Anchors(settings.default_params(case), settings.prior_params(case))

    def held(self, case: SuiteCase) -> dict[str, float]:
        return {"max_tokens": float(self.anchors(case).prior.max_tokens)}

    async def search(self, case: SuiteCase, evaluator: CaseEvaluator) -> Scored | None:
        scored = await evaluator.score_many([self.anchors(case).prior], self.scope.samples, "prior")
        return scored[0]


def test_a_new_strategy_plugs_in_and_the_engine_completes_the_anchors() -> None:
    record = asyncio.run(evaluate_case(CASES[0], PriorOnly(), fake_sampler, scorer=mean_scorer))
    assert [e.stage for e in record.evaluated] == ["prior", "default"]
    assert record.params == record.evaluated[0].params
    assert record.model_calls == 4  # the default was scored beyond the strategy's call limit
    assert record.fixed == {"max_tokens": float(record.params["max_tokens"])}


def test_a_missing_sample_leaves_its_configuration_out_and_missing_anchors_fail() -> None:
    strategy, samples = presampled(plan_samples=2, seed=0)
    plan = strategy.plan
    unsampled, cut = [i for i, label in enumerate(plan.labels) if label == "grid"][:2]
    del samples[unsampled]  # a run stopped at its deadline never sampled it
    samples[cut]["m1"] = samples[cut]["m1"][:1]  # one of its K texts is missing
    sampler = PrecomputedSampler(plan, samples)
    record = asyncio.run(evaluate_case(CASES[0], strategy, sampler, scorer=mean_scorer))
    scored = [e.params for e in record.evaluated]
    assert plan.configs[unsampled] not in scored and plan.configs[cut] not in scored
    # Every configuration but those two and the other task's prior, on K = 2 samples each; the
    # one text of the cut configuration was read, so it counts as a sample drawn.
    assert len(scored) == len(plan.configs) - 3
    assert record.model_calls == 2 * len(scored) + 1
    del samples[0]["m1"]  # the default
    sampler = PrecomputedSampler(plan, samples)
    with pytest.raises(MissingSample, match="m1: no samples under the default or the prior"):
        asyncio.run(evaluate_case(CASES[0], strategy, sampler, scorer=mean_scorer))


def test_a_configuration_listed_twice_reads_the_copy_that_was_sampled() -> None:
    strategy, samples = presampled(plan_samples=2, seed=0)
    plan = strategy.plan
    first = next(i for i, label in enumerate(plan.labels) if label == "grid")
    again = len(plan.configs)
    plan = plan.model_copy(
        update={"configs": [*plan.configs, plan.configs[first]], "labels": [*plan.labels, "grid"]}
    )
    samples[again] = {case.id: ["the later copy", "was sampled"] for case in CASES}
    del samples[first]  # the earlier copy was cut off by the deadline
    sampler = PrecomputedSampler(plan, samples)
    result = asyncio.run(sampler(CASES[0], plan.params(first), plan.seed + 1))
    assert result.text == "was sampled"


@dataclass(frozen=True)
class BackwardsExecutor:
    """A stand-in for another executor: the cases one at a time, last first."""

    async def __call__(
        self,
        cases: Sequence[SuiteCase],
        job: SearchJob,
        on_done: OnCaseDone,
        stop: asyncio.Event,
    ) -> None:
        for case in reversed(cases):
            if stop.is_set():
                return
            try:
                on_done(case, await job(case))
            except HAGError as exc:
                on_done(case, exc)


def test_the_run_goes_through_any_executor(tmp_path: Path) -> None:
    job = SearchJob(TwoStageSearch(SearchSettings(samples=2, budget=6)), fake_sampler, mean_scorer)
    run = search_file(CASES, job, tmp_path / "s.jsonl", executor=BackwardsExecutor())
    assert run.completed == ["r1", "m2", "m1"]
    local = search_file(CASES, job, tmp_path / "local.jsonl")
    assert local.completed == ["m1", "m2", "r1"]
    by_id = {r.id: without_timing(r) for r in read_records(tmp_path / "local.jsonl")}
    assert {r.id: without_timing(r) for r in read_records(tmp_path / "s.jsonl")} == by_id


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_the_search_package_stays_in_its_layer() -> None:
    """No rich, no evaluation, training or front ends: it reports progress to its caller."""
    package = Path(evaluate_case.__code__.co_filename).parent
    forbidden = ("rich", "hag_agent.evaluation", "hag_agent.training", "hag_agent.cli")
    modules = sorted(package.glob("*.py"))
    assert len(modules) >= 10
    for module in modules:
        bad = [
            name
            for name in imported_modules(module)
            if any(name == f or name.startswith(f + ".") for f in forbidden)
        ]
        assert not bad, (module.name, bad)
