"""Statistics of evaluation rows: aggregates per seed, and paired comparisons with intervals."""

from __future__ import annotations

import random
import statistics

import pytest

from hag_agent.evaluation import EvalRow, aggregate
from hag_agent.evaluation.comparison import (
    case_differences,
    compare,
    compare_all,
    format_difference,
    format_record,
    paired_interval,
)


def row(case_id: str, task: str, proposer: str, seed: int, metric: float) -> EvalRow:
    return EvalRow(
        case_id=case_id,
        task=task,
        metric_name="number",
        proposer=proposer,
        seed=seed,
        prompt_sha="x",
        critique=False,
        setup="s",
        metric=metric,
        time_s=1.0 + seed,
        tokens=10 * (seed + 1),
        attempts=1,
        params=None,
        output="",
    )


def test_aggregate_mean_and_spread_across_seeds() -> None:
    rows = [
        row("a", "math", "self", 0, 1.0),
        row("b", "math", "self", 0, 0.0),  # seed 0 mean 0.5
        row("a", "math", "self", 1, 1.0),
        row("b", "math", "self", 1, 1.0),  # seed 1 mean 1.0
        row("c", "creative", "self", 0, 0.2),
        row("c", "creative", "self", 1, 0.4),
    ]
    by = {(a.task, a.proposer): a for a in aggregate(rows, ["self", "prior"], ["math", "creative"])}
    math_self = by["math", "self"]
    assert math_self.mean == pytest.approx(0.75)
    assert math_self.std == pytest.approx(0.35355339, rel=1e-6)  # stdev(0.5, 1.0)
    assert math_self.cases == 2 and math_self.runs == 4
    assert math_self.time_s == pytest.approx(1.5) and math_self.tokens == pytest.approx(15)
    overall = by["overall", "self"]
    # seed 0: (1 + 0 + 0.2) / 3 = 0.4; seed 1: (1 + 1 + 0.4) / 3 = 0.8
    assert overall.mean == pytest.approx(0.6) and overall.std == pytest.approx(0.28284271)
    assert by["math", "prior"].mean is None and by["math", "prior"].runs == 0


def pairs(values: dict[str, list[tuple[float, float]]]) -> list[EvalRow]:
    """Rows of `self` and `prior`: per case, one (self, prior) metric pair per seed."""
    rows: list[EvalRow] = []
    for case, per_seed in values.items():
        for seed, (mine, theirs) in enumerate(per_seed):
            rows += [
                row(case, "math", "self", seed, mine),
                row(case, "math", "prior", seed, theirs),
            ]
    return rows


def test_a_constant_gain_is_better_with_a_point_interval() -> None:
    rows = pairs({c: [(0.75, 0.5), (1.0, 0.75)] for c in "abcd"})
    item = compare(rows, "self", "prior")
    assert item.difference == pytest.approx(0.25)
    assert item.low == pytest.approx(0.25) and item.high == pytest.approx(0.25)
    assert item.verdict == "better"
    assert (item.cases, item.pairs, item.wins, item.ties, item.losses) == (4, 8, 4, 0, 0)
    assert format_difference(item) == "+0.250 [+0.250, +0.250]"
    assert format_record(item) == "4 / 0 / 0"


def test_an_interval_holding_zero_is_no_measurable_difference() -> None:
    rows = pairs({"a": [(1.0, 0.0)], "b": [(0.0, 1.0)], "c": [(1.0, 0.0)], "d": [(0.5, 0.5)]})
    item = compare(rows, "self", "prior")
    assert item.difference == pytest.approx(0.25)
    assert item.low is not None and item.high is not None
    assert item.low < 0 < item.high
    assert item.verdict == "no measurable difference"
    assert (item.wins, item.ties, item.losses) == (2, 1, 1)


def test_a_consistent_loss_is_worse() -> None:
    rows = pairs({c: [(0.2, 0.5), (0.4, 0.5)] for c in "abcdef"})
    item = compare(rows, "self", "prior")
    assert item.verdict == "worse" and item.high is not None and item.high < 0
    assert item.losses == 6


def test_only_runs_both_made_are_paired() -> None:
    rows = pairs({"a": [(1.0, 0.0)], "b": [(0.0, 0.0)]})
    rows += [row("a", "math", "self", 7, 0.0), row("c", "math", "prior", 0, 1.0)]  # no partner
    assert case_differences(rows, "self", "prior") == {"a": [1.0], "b": [0.0]}
    item = compare(rows, "self", "prior")
    assert (item.cases, item.pairs) == (2, 2)


def test_one_case_gives_no_verdict_and_no_interval() -> None:
    item = compare(pairs({"a": [(1.0, 0.0), (1.0, 0.0)]}), "self", "prior")
    assert item.difference == pytest.approx(1.0)
    assert item.low is None and item.high is None and item.verdict == "too few cases"
    assert format_difference(item) == "+1.000"
    empty = compare([], "self", "prior")
    assert empty.difference is None and format_difference(empty) == "-"


def test_the_interval_matches_the_normal_approximation_on_many_cases() -> None:
    rng = random.Random(3)
    case_means = [rng.gauss(0.1, 0.3) for _ in range(400)]
    low, high = paired_interval({f"c{i}": [m] for i, m in enumerate(case_means)})
    half = 1.96 * statistics.stdev(case_means) / len(case_means) ** 0.5
    centre = statistics.fmean(case_means)
    assert low == pytest.approx(centre - half, abs=0.2 * half)
    assert high == pytest.approx(centre + half, abs=0.2 * half)


def test_noise_between_seeds_widens_the_interval() -> None:
    rng = random.Random(5)
    steady = {f"c{i}": [0.1] * 4 for i in range(30)}
    noisy = {f"c{i}": [0.1 + rng.choice((-0.5, 0.5)) for _ in range(4)] for i in range(30)}
    steady_low, steady_high = paired_interval(steady)
    noisy_low, noisy_high = paired_interval(noisy)
    assert steady_high - steady_low == pytest.approx(0.0)
    assert noisy_high - noisy_low > 0.1


def test_the_interval_repeats_for_the_same_rows() -> None:
    rows = pairs({c: [(random.Random(c).random(), 0.5)] for c in "abcdefgh"})
    assert compare(rows, "self", "prior") == compare(rows, "self", "prior")


def test_every_proposer_is_compared_with_each_baseline_that_ran() -> None:
    rows = [
        row(c, t, p, 0, 0.5)
        for c, t in (("a", "math"), ("b", "creative"))
        for p in ("default", "prior", "self")
    ]
    found = {
        (c.baseline, c.task, c.proposer)
        for c in compare_all(rows, ["default", "prior", "self"], ["math", "creative"])
    }
    assert ("prior", "overall", "self") in found and ("default", "math", "prior") in found
    assert not any(baseline == proposer for baseline, _, proposer in found)
    assert len(found) == 2 * 3 * 2  # two baselines x (overall + two tasks) x two others
    assert compare_all(rows, ["self", "random"], ["math"]) == []
    fitted = rows + [
        row(c, t, "fitted-prior", 0, 0.5) for c, t in (("a", "math"), ("b", "creative"))
    ]
    against = {c.baseline for c in compare_all(fitted, ["self", "fitted-prior"], ["math"])}
    assert against == {"fitted-prior"}  # the refitted prior is a baseline too
