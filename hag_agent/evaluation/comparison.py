"""Paired comparisons of proposers: the difference to a baseline, its interval, wins and losses.

Two proposers are compared on the runs they share: the same case under the same seed. The
difference is the mean over cases of each case's mean difference over its shared seeds (with as
many seeds per case, the difference of the two aggregate means). Its 95% interval comes from a
two-stage paired bootstrap: resample the cases, then each drawn case's seeds, both with
replacement, and take the 2.5th and 97.5th percentiles of the resampled differences. Cases are
the unit that varies most (a case a small model cannot do scores 0 whatever the settings), so
they are resampled first; seeds add the sampling noise within a case.

A difference whose interval holds 0 is "no measurable difference"; with fewer than two shared
cases there is no verdict at all.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict

from hag_agent.evaluation.rows import EvalRow

OVERALL = "overall"
"""The aggregate over every task."""

BASELINES = ("prior", "default", "fitted-prior")
"""The proposers every other is compared with, where the evaluation ran them (``fitted-prior``:
the best one configuration per task kind, which a per-query choice has to beat to pay)."""

RESAMPLES = 2000
"""Bootstrap resamples per comparison."""

CONFIDENCE = 0.95
"""The interval's coverage."""

TIE_TOLERANCE = 1e-9
"""A case's mean difference closer to 0 than this is a tie."""

Verdict = Literal["better", "worse", "no measurable difference", "too few cases"]


class Comparison(BaseModel):
    """One proposer against one baseline on one task (or overall)."""

    model_config = ConfigDict(extra="forbid")

    task: str
    """A task kind, or ``overall``."""
    proposer: str
    """The proposer compared."""
    baseline: str
    """The proposer it is compared with."""
    cases: int
    """Cases both ran under at least one common seed."""
    pairs: int
    """Case x seed runs both made."""
    difference: float | None
    """Mean over cases of the per-case mean difference (proposer minus baseline)."""
    low: float | None
    """Lower end of the 95% paired bootstrap interval."""
    high: float | None
    """Upper end of the 95% paired bootstrap interval."""
    wins: int
    """Cases where the proposer's mean over shared seeds is higher."""
    ties: int
    """Cases where the two means are equal."""
    losses: int
    """Cases where the proposer's mean over shared seeds is lower."""

    @property
    def verdict(self) -> Verdict:
        """Better or worse only when the interval excludes 0."""
        if self.cases < 2 or self.low is None or self.high is None:
            return "too few cases"
        if self.low > 0:
            return "better"
        if self.high < 0:
            return "worse"
        return "no measurable difference"


def case_differences(
    rows: Sequence[EvalRow], proposer: str, baseline: str, task: str = OVERALL
) -> dict[str, list[float]]:
    """Per case, the proposer's metric minus the baseline's under each seed both ran.

    Args:
        rows: Evaluation rows.
        proposer: The proposer compared.
        baseline: The proposer compared with.
        task: Only this task kind's cases; ``overall`` for every case.
    """
    metric: dict[tuple[str, str, int], float] = {
        (r.proposer, r.case_id, r.seed): r.metric for r in rows if task in (OVERALL, r.task)
    }
    differences: dict[str, list[float]] = {}
    for (who, case_id, seed), value in sorted(metric.items()):
        other = metric.get((baseline, case_id, seed))
        if who == proposer and other is not None:
            differences.setdefault(case_id, []).append(value - other)
    return differences


def paired_interval(
    differences: dict[str, list[float]], *, resamples: int = RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """The two-stage bootstrap interval (cases, then seeds within a case) of the difference.

    Written here rather than taken from SciPy: `scipy.stats.bootstrap` resamples independent
    observations only, not seeds nested in cases, and the core install carries no NumPy.
    """
    per_case = [values for _, values in sorted(differences.items())]
    rng = random.Random(seed)
    means: list[float] = []
    for _ in range(resamples):
        total = 0.0
        for values in rng.choices(per_case, k=len(per_case)):
            drawn = values if len(values) == 1 else rng.choices(values, k=len(values))
            total += math.fsum(drawn) / len(drawn)
        means.append(total / len(per_case))
    means.sort()
    tail = (1.0 - CONFIDENCE) / 2.0
    low = means[max(0, math.floor(tail * resamples))]
    high = means[min(resamples - 1, math.ceil((1.0 - tail) * resamples) - 1)]
    return low, high


def compare(
    rows: Sequence[EvalRow], proposer: str, baseline: str, task: str = OVERALL
) -> Comparison:
    """``proposer`` against ``baseline`` on ``task``'s cases (every case for ``overall``)."""
    differences = case_differences(rows, proposer, baseline, task)
    case_means = [math.fsum(v) / len(v) for v in differences.values()]
    interval: tuple[float | None, float | None] = (None, None)
    if len(case_means) >= 2:
        interval = paired_interval(differences)
    return Comparison(
        task=task,
        proposer=proposer,
        baseline=baseline,
        cases=len(case_means),
        pairs=sum(len(v) for v in differences.values()),
        difference=math.fsum(case_means) / len(case_means) if case_means else None,
        low=interval[0],
        high=interval[1],
        wins=sum(m > TIE_TOLERANCE for m in case_means),
        ties=sum(abs(m) <= TIE_TOLERANCE for m in case_means),
        losses=sum(m < -TIE_TOLERANCE for m in case_means),
    )


def compare_all(
    rows: Sequence[EvalRow], proposers: Sequence[str], tasks: Sequence[str]
) -> list[Comparison]:
    """Each proposer against each baseline that ran, overall and per task."""
    comparisons: list[Comparison] = []
    for baseline in (b for b in BASELINES if b in proposers):
        for task in [OVERALL, *tasks]:
            comparisons += [compare(rows, p, baseline, task) for p in proposers if p != baseline]
    return comparisons


def format_difference(item: Comparison) -> str:
    """``+0.021 [-0.010, +0.052]`` (or ``-`` without shared runs)."""
    if item.difference is None:
        return "-"
    if item.low is None or item.high is None:
        return f"{item.difference:+.3f}"
    return f"{item.difference:+.3f} [{item.low:+.3f}, {item.high:+.3f}]"


def format_record(item: Comparison) -> str:
    """``6 / 30 / 4``: cases won, tied and lost."""
    return f"{item.wins} / {item.ties} / {item.losses}"


__all__ = [
    "BASELINES",
    "CONFIDENCE",
    "OVERALL",
    "RESAMPLES",
    "Comparison",
    "Verdict",
    "case_differences",
    "compare",
    "compare_all",
    "format_difference",
    "format_record",
    "paired_interval",
]
