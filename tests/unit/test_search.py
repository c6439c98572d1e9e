"""The two-stage hyperparameter search: planted optimum, budget, seeds, resume, failures."""

from __future__ import annotations

import asyncio
import json
import math
import random
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from hag_agent.backends.chat_model import ChatModelBackend
from hag_agent.data.search_records import SearchRecord, compare, read_records
from hag_agent.data.suites import SuiteCase
from hag_agent.errors import BackendError, HAGInputError
from hag_agent.hyperparameters import HyperParams
from hag_agent.progress import ProgressEvent
from hag_agent.search.engine import SearchJob, evaluate_case
from hag_agent.search.executor import LocalExecutor
from hag_agent.search.run import SearchRun, run_search, search_file
from hag_agent.search.sampling import BackendSampler, Sampler, SampleResult
from hag_agent.search.space import SEARCH_KEYS, SearchSettings, SearchSpace
from hag_agent.search.strategies import TwoStageSearch, exhaustive_case
from hag_agent.tasks import DEFAULT_PARAMS, TASK_PRIORS, TaskKind
from hag_agent.testing import ScriptedChatModel

PEAK = {"temperature": 0.4, "top_p": 0.8, "top_k": 20, "repetition_penalty": 1.1}
SPACE = SearchSpace()


def ladder_distance(params: HyperParams | dict[str, float | int], key: str) -> int:
    value = params[key] if isinstance(params, dict) else getattr(params, key)
    return abs(SPACE.position(key, float(value)) - SPACE.position(key, PEAK[key]))


def quality(params: HyperParams) -> float:
    """Peaks at PEAK: a smooth function of the ladder distance from it."""
    squared = sum(ladder_distance(params, key) ** 2 for key in SEARCH_KEYS)
    return math.exp(-squared / 20)


def planted_scorer(case: SuiteCase, outputs: Sequence[str]) -> float:
    return sum(float(o) for o in outputs) / len(outputs)


class PlantedSampler:
    """Outputs its configuration's quality as text; records every call."""

    def __init__(self, fail_on: set[str] | None = None, crash_after_cases: int | None = None):
        self.calls: list[tuple[str, tuple[float | int, ...], int]] = []
        self.fail_on = fail_on or set()
        self.crash_after_cases = crash_after_cases

    async def __call__(self, case: SuiteCase, params: HyperParams, seed: int) -> SampleResult:
        seen = list(dict.fromkeys(c for c, _, _ in self.calls))
        if (
            self.crash_after_cases is not None
            and case.id not in seen
            and len(seen) >= self.crash_after_cases
        ):
            raise RuntimeError("killed")
        if case.id in self.fail_on:
            raise BackendError("server went away")
        self.calls.append((case.id, params.key(), seed))
        await asyncio.sleep(0)
        return SampleResult(text=f"{quality(params):.6f}", completion_tokens=3)

    def case_ids(self) -> set[str]:
        return {c for c, _, _ in self.calls}


def make_case(i: int = 0, task: TaskKind = TaskKind.MATH) -> SuiteCase:
    return SuiteCase(id=f"case-{i}", task=task, prompt=f"What is {i} + 2?", answer=str(i + 2))


def search(
    sampler: PlantedSampler, settings: SearchSettings, case: SuiteCase | None = None
) -> SearchRecord:
    return asyncio.run(
        evaluate_case(case or make_case(), TwoStageSearch(settings), sampler, scorer=planted_scorer)
    )


def planted_job(sampler: Sampler, settings: SearchSettings) -> SearchJob:
    """The two-stage search with ``sampler`` and `planted_scorer`."""
    return SearchJob(TwoStageSearch(settings), sampler, planted_scorer)


def notes(events: list[ProgressEvent]) -> list[str]:
    """The messages of the ``note`` events."""
    return [event.message for event in events if event.kind == "note"]


# -- the planted optimum ---------------------------------------------------------------------------


@pytest.mark.parametrize("budget", [30, 40, 80])
def test_search_finds_the_planted_optimum_within_its_budget(budget: int) -> None:
    sampler = PlantedSampler()
    settings = SearchSettings(samples=2, budget=budget)
    record = search(sampler, settings)
    assert record.evaluations <= budget
    assert record.model_calls == len(sampler.calls) <= budget * settings.samples
    assert record.evaluations == pytest.approx(record.model_calls / settings.samples)
    for key in SEARCH_KEYS:
        assert ladder_distance(record.params, key) <= 1, (key, record.params)
    assert record.score > record.default_score
    assert record.score == max(e.score for e in record.evaluated if e.samples == 2)


def test_a_generous_budget_reaches_the_peak_exactly() -> None:
    record = search(PlantedSampler(), SearchSettings(samples=2, budget=80))
    assert {k: record.params[k] for k in SEARCH_KEYS} == PEAK
    assert record.score == pytest.approx(1.0)
    assert json.loads(record.proposal) == record.params


def test_a_tiny_budget_is_respected_and_still_scores_default_and_prior() -> None:
    for budget in (2, 3, 5):
        sampler = PlantedSampler()
        record = search(sampler, SearchSettings(samples=3, budget=budget))
        assert record.model_calls <= budget * 3
        stages = [e.stage for e in record.evaluated]
        assert stages[:2] == ["default", "prior"]
    record = search(PlantedSampler(), SearchSettings(samples=3, budget=2))
    assert record.model_calls == 6
    assert record.params in (record.evaluated[0].params, record.evaluated[1].params)


def test_default_configuration_is_always_scored_first_on_k_samples() -> None:
    case = make_case(task=TaskKind.TRANSLATION)
    settings = SearchSettings(samples=3, budget=12)
    record = search(
        PlantedSampler(),
        settings,
        SuiteCase(**{**case.model_dump(), "answer": None, "reference": "x"}),
    )
    first = record.evaluated[0]
    assert first.stage == "default" and first.samples == 3
    expected = DEFAULT_PARAMS.model_copy(
        update={"max_tokens": TASK_PRIORS[TaskKind.TRANSLATION].max_tokens}
    )
    assert first.params == expected.model_dump()
    assert record.default_score == first.score
    assert record.evaluated[1].params == TASK_PRIORS[TaskKind.TRANSLATION].model_dump()
    assert record.prior_score == record.evaluated[1].score


def test_every_configuration_uses_the_same_seeds_and_no_sample_is_drawn_twice() -> None:
    sampler = PlantedSampler()
    settings = SearchSettings(samples=3, coarse_samples=1, budget=30, seed=100)
    record = search(sampler, settings)
    assert len(set(sampler.calls)) == len(sampler.calls)  # a sample is never paid for twice
    seeds_by_config: dict[tuple[float | int, ...], set[int]] = {}
    for _, key, seed in sampler.calls:
        seeds_by_config.setdefault(key, set()).add(seed)
    for seeds in seeds_by_config.values():
        assert seeds in ({100}, {100, 101, 102})
    for entry in record.evaluated:
        key = HyperParams.model_validate(entry.params).key()
        assert seeds_by_config[key] >= set(range(100, 100 + entry.samples))


def test_searched_configurations_hold_min_p_and_max_tokens() -> None:
    record = search(PlantedSampler(), SearchSettings(samples=2, budget=30, max_tokens=32))
    for entry in record.evaluated:
        assert entry.params["max_tokens"] == 32
        if entry.stage in ("coarse", "rescore", "refine"):
            assert entry.params["min_p"] == 0.0
    assert record.fixed == {"min_p": 0.0, "max_tokens": 32.0}  # the record says so


def test_search_is_deterministic() -> None:
    settings = SearchSettings(samples=2, budget=30)
    one, two = search(PlantedSampler(), settings), search(PlantedSampler(), settings)
    assert one.model_dump(exclude={"wall_s"}) == two.model_dump(exclude={"wall_s"})


def test_noisy_fake_with_real_metric_improves_on_the_default() -> None:
    """A fake that answers right with a probability peaking at PEAK, scored by the real metric."""
    case = make_case(7)

    async def sampler(case: SuiteCase, params: HyperParams, seed: int) -> SampleResult:
        # Common random numbers: the same seed draws the same u for every configuration.
        u = random.Random(seed).random()
        return SampleResult(text="The answer is 9." if u < quality(params) else "It is 8.")

    settings = SearchSettings(samples=6, budget=30)
    record = asyncio.run(evaluate_case(case, TwoStageSearch(settings), sampler))
    assert record.default_score < record.score
    assert record.score == max(e.score for e in record.evaluated if e.samples == 6)
    assert record.evaluations <= 30


# -- the exhaustive reference ----------------------------------------------------------------------


def small_space() -> SearchSpace:
    return SearchSpace(
        ladders={
            "temperature": (0.0, 0.4, 0.8, 1.0),
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


def test_exhaustive_grid_and_comparison() -> None:
    settings = SearchSettings(samples=2, budget=12, space=small_space())
    case = make_case()
    grid = asyncio.run(exhaustive_case(case, PlantedSampler(), settings, scorer=planted_scorer))
    assert grid.evaluations == 4 * 2 * 2 * 2  # the default is on this grid
    assert grid.model_calls == grid.evaluations * 2
    assert {k: grid.params[k] for k in SEARCH_KEYS} == PEAK
    record = search(PlantedSampler(), settings, case)
    result = compare(record, grid)
    assert result.fraction_of_optimum == pytest.approx(record.score / grid.score)
    assert 0 < result.fraction_of_evaluations <= 12 / 32
    assert result.gap_closed == pytest.approx(
        (record.score - grid.default_score) / (grid.score - grid.default_score)
    )


# -- the space -------------------------------------------------------------------------------------


def test_space_rejects_coarse_values_off_the_ladder_and_unordered_ladders() -> None:
    with pytest.raises(ValueError, match="not on the ladder"):
        SearchSpace(coarse={**SearchSpace().coarse, "temperature": (0.25,)})
    with pytest.raises(ValueError, match="must increase"):
        SearchSpace(ladders={**SearchSpace().ladders, "top_k": (0, 5, 10)})
    with pytest.raises(ValueError):
        SearchSpace(ladders={**SearchSpace().ladders, "temperature": (0.5, 3.0)})


def test_neighbours_treat_top_k_off_as_the_widest_rung() -> None:
    base = DEFAULT_PARAMS  # top_k 0 = off
    assert [p.top_k for p in SPACE.neighbours(base, "top_k")] == [160]
    tk20 = base.model_copy(update={"top_k": 20})
    assert [p.top_k for p in SPACE.neighbours(tk20, "top_k")] == [10, 40]
    off_ladder = base.model_copy(update={"temperature": 0.33})
    assert [p.temperature for p in SPACE.neighbours(off_ladder, "temperature")] == [0.3, 0.2, 0.4]


# -- the resumable run -----------------------------------------------------------------------------


def test_resume_after_an_interruption_redoes_nothing(tmp_path: Path) -> None:
    cases = [make_case(i) for i in range(5)]
    out = tmp_path / "search.jsonl"
    settings = SearchSettings(samples=2, budget=8)
    first = PlantedSampler(crash_after_cases=2)
    with pytest.raises(RuntimeError, match="killed"):
        search_file(cases, planted_job(first, settings), out)
    finished = {r.id for r in read_records(out)}
    assert finished == {"case-0", "case-1"}
    # Killed mid-write: a partial last line.
    with out.open("a", encoding="utf-8") as handle:
        handle.write('{"id": "case-2", "task": "ma')
    events: list[ProgressEvent] = []
    second = PlantedSampler()
    run = search_file(cases, planted_job(second, settings), out, progress=events.append)
    assert set(run.skipped) == finished
    assert second.case_ids() == {"case-2", "case-3", "case-4"}
    assert any("partial last line" in w for w in notes(events))
    advances = [e for e in events if e.kind == "advance"]
    assert [(e.done, e.total) for e in advances] == [(1, 3), (2, 3), (3, 3)]
    lines = out.read_text(encoding="utf-8").splitlines()
    ids = [json.loads(line)["id"] for line in lines]  # every line is whole JSON again
    assert sorted(ids) == [c.id for c in cases]
    third = PlantedSampler()
    again = search_file(cases, planted_job(third, settings), out)
    assert third.calls == [] and len(again.skipped) == 5 and again.completed == []


def test_resume_refuses_a_file_made_with_other_settings(tmp_path: Path) -> None:
    cases = [make_case(i) for i in range(2)]
    out = tmp_path / "search.jsonl"
    search_file(cases[:1], planted_job(PlantedSampler(), SearchSettings(samples=2, budget=8)), out)
    before = out.read_text(encoding="utf-8")
    sampler = PlantedSampler()
    with pytest.raises(HAGInputError, match=r"--samples 2 --budget 8 --seed 0 .*not --samples 3"):
        search_file(cases, planted_job(sampler, SearchSettings(samples=3, budget=8)), out)
    assert sampler.calls == [] and out.read_text(encoding="utf-8") == before


def search_four_cases(sampler: PlantedSampler, out: Path, **options: Any) -> SearchRun:
    """case-0 .. case-3 searched into ``out`` (K = 2, budget 6), scored by `planted_scorer`."""
    cases = [make_case(i) for i in range(4)]
    settings = SearchSettings(samples=2, budget=6)
    return search_file(cases, planted_job(sampler, settings), out, **options)


def test_a_failing_case_gets_no_record_and_the_run_goes_on(tmp_path: Path) -> None:
    out = tmp_path / "s.jsonl"
    events: list[ProgressEvent] = []
    run = search_four_cases(PlantedSampler(fail_on={"case-1"}), out, progress=events.append)
    assert set(run.failed) == {"case-1"} and "server went away" in run.failed["case-1"]
    assert notes(events) == ["case case-1 failed: server went away"]
    assert {r.id for r in read_records(out)} == {"case-0", "case-2", "case-3"}
    assert not run.stopped
    # The next run only redoes the failed case.
    retry = PlantedSampler()
    search_four_cases(retry, out)
    assert retry.case_ids() == {"case-1"}


def test_stop_on_error_stops_taking_new_cases(tmp_path: Path) -> None:
    out = tmp_path / "s.jsonl"
    run = search_four_cases(PlantedSampler(fail_on={"case-1"}), out, stop_on_error=True)
    assert run.stopped and run.completed == ["case-0"] and run.not_run == 2
    assert {r.id for r in read_records(out)} == {"case-0"}


def test_concurrent_run_matches_the_sequential_one(tmp_path: Path) -> None:
    cases = [make_case(i) for i in range(4)]
    settings = SearchSettings(samples=2, budget=10)
    search_file(cases, planted_job(PlantedSampler(), settings), tmp_path / "a.jsonl")
    search_file(
        cases,
        planted_job(PlantedSampler(), settings),
        tmp_path / "b.jsonl",
        executor=LocalExecutor(concurrency=3),
    )
    a = {r.id: r.model_dump(exclude={"wall_s"}) for r in read_records(tmp_path / "a.jsonl")}
    b = {r.id: r.model_dump(exclude={"wall_s"}) for r in read_records(tmp_path / "b.jsonl")}
    assert a == b


def test_concurrency_limits_calls_in_flight(tmp_path: Path) -> None:
    in_flight = 0
    peak = 0

    async def sampler(case: SuiteCase, params: HyperParams, seed: int) -> SampleResult:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.001)
        in_flight -= 1
        return SampleResult(text=f"{quality(params):.6f}")

    asyncio.run(
        run_search(
            [make_case(i) for i in range(3)],
            planted_job(sampler, SearchSettings(samples=2, budget=6)),
            tmp_path / "x.jsonl",
            executor=LocalExecutor(concurrency=2),
        )
    )
    assert peak == 2
    with pytest.raises(ValueError, match="at least 1"):
        LocalExecutor(concurrency=0)


def test_read_records_reports_a_bad_middle_line(tmp_path: Path) -> None:
    out = tmp_path / "s.jsonl"
    search_file(
        [make_case(0)], planted_job(PlantedSampler(), SearchSettings(samples=1, budget=3)), out
    )
    good = out.read_text(encoding="utf-8")
    out.write_text('{"not": "a record"}\n' + good, encoding="utf-8")
    warnings: list[str] = []
    assert [r.id for r in read_records(out, warn=warnings.append)] == ["case-0"]
    assert warnings and ":1:" in warnings[0]


def test_record_counts_and_fields() -> None:
    record = search(PlantedSampler(), SearchSettings(samples=2, budget=10))
    assert record.completion_tokens == 3 * record.model_calls
    assert record.task == "math" and record.prompt == make_case().prompt
    assert Counter(e.stage for e in record.evaluated)["default"] == 1
    assert HyperParams.model_validate_json(record.proposal) == record.best_params()


# -- the real sampler ----------------------------------------------------------------------------


def test_backend_sampler_sends_every_value_and_the_seed() -> None:
    model = ScriptedChatModel(script={"generate": ["The answer is 4."]})
    sampler = BackendSampler(ChatModelBackend(model))
    case = make_case(2)
    params = HyperParams(
        temperature=0.3, top_p=0.9, top_k=20, min_p=0.0, repetition_penalty=1.1, max_tokens=16
    )
    result = asyncio.run(sampler(case, params, 42))
    assert result.text == "The answer is 4." and result.completion_tokens == 4
    (call,) = model.calls_for("generate")
    assert call.kwargs["seed"] == 42
    assert {k: call.kwargs[k] for k in params.model_dump()} == params.model_dump()
    assert call.messages[-1].content == case.prompt


def test_drop_partial_line_cuts_back_to_the_last_newline(tmp_path: Path) -> None:
    from hag_agent.data.jsonl_log import drop_partial_line

    path = tmp_path / "log.jsonl"
    whole = b'{"a": 1}\n{"b": 2}\n'
    path.write_bytes(whole + b"x" * 200_000)  # a cut line longer than one read block
    drop_partial_line(path)
    assert path.read_bytes() == whole
    drop_partial_line(path)  # whole lines: untouched
    assert path.read_bytes() == whole
    path.write_bytes(b"no newline at all")
    drop_partial_line(path)
    assert path.read_bytes() == b""
