"""The evaluation report: per task and overall, per proposer.

Aggregates weight all cases equally: the mean metric is the mean over seeds of each seed's mean
over cases, the spread is the standard deviation of those per-seed means (0 with one seed); time
and tokens are means per case run.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hag_agent.evaluation.comparison import OVERALL, Comparison
from hag_agent.evaluation.rows import EvalRow, Failure
from hag_agent.evaluation.settings import EvalSettings


class Aggregate(BaseModel):
    """One proposer on one task (or overall)."""

    model_config = ConfigDict(extra="forbid")

    task: str
    """A task kind, or ``overall``."""
    proposer: str
    """The proposer."""
    cases: int
    """Distinct cases with at least one row."""
    runs: int
    """Rows aggregated."""
    mean: float | None
    """Mean metric (mean over seeds of the per-seed case mean); None without rows."""
    std: float
    """Standard deviation of the per-seed means (0 with one seed)."""
    time_s: float | None
    """Mean wall time per run."""
    tokens: float | None
    """Mean generated tokens per run, where reported."""


class ReportLabels(BaseModel):
    """How a report names what was run; the backend and its options also key the rows."""

    model_config = ConfigDict(extra="forbid")

    command: str = ""
    """The command line that reproduces the run."""
    suite: str = ""
    """The suite name or file."""
    backend: str = ""
    """The backend, in words (empty: the model's type name)."""
    backend_options: dict[str, Any] = Field(default_factory=dict)
    """The backend's options as given."""


class EvalReport(ReportLabels):
    """Everything the reports show: the labels, then the figures."""

    model_config = ConfigDict(extra="forbid")

    settings: EvalSettings
    """The comparison's settings."""
    cases: int
    """Cases evaluated."""
    metrics: dict[str, list[str]]
    """The metric names of each task."""
    tasks: list[str]
    """Tasks in report order."""
    aggregates: list[Aggregate]
    """Per task and overall, per proposer."""
    comparisons: list[Comparison] = Field(default_factory=list)
    """Each proposer against the prior and the default (where they ran), overall and per task."""
    failures: list[Failure] = Field(default_factory=list)
    """Runs that failed."""
    rows: int
    """Rows aggregated."""
    reused_rows: int = 0
    """Of those, rows found in the output folder from an earlier run."""
    wall_s: float = 0.0
    """Wall time of this invocation."""
    created: str = ""
    """When the report was made (UTC, ISO 8601)."""

    def aggregate(self, task: str, proposer: str) -> Aggregate | None:
        """The aggregate of one task (or ``overall``) and proposer."""
        return next((a for a in self.aggregates if a.task == task and a.proposer == proposer), None)

    def comparisons_with(self, baseline: str, task: str) -> list[Comparison]:
        """The comparisons with ``baseline`` on one task (or ``overall``), in proposer order."""
        return [c for c in self.comparisons if c.baseline == baseline and c.task == task]


def aggregate(
    rows: Sequence[EvalRow], proposers: Sequence[str], tasks: Sequence[str]
) -> list[Aggregate]:
    """Per task and overall, per proposer (see the module docstring)."""
    result: list[Aggregate] = []
    for task in [*tasks, OVERALL]:
        for proposer in proposers:
            chosen = [
                r for r in rows if r.proposer == proposer and (task == OVERALL or r.task == task)
            ]
            by_seed: dict[int, list[float]] = {}
            for row in chosen:
                by_seed.setdefault(row.seed, []).append(row.metric)
            seed_means = [statistics.fmean(v) for v in by_seed.values()]
            tokens = [r.tokens for r in chosen if r.tokens is not None]
            result.append(
                Aggregate(
                    task=task,
                    proposer=proposer,
                    cases=len({r.case_id for r in chosen}),
                    runs=len(chosen),
                    mean=statistics.fmean(seed_means) if seed_means else None,
                    std=statistics.stdev(seed_means) if len(seed_means) > 1 else 0.0,
                    time_s=statistics.fmean(r.time_s for r in chosen) if chosen else None,
                    tokens=statistics.fmean(tokens) if tokens else None,
                )
            )
    return result


def format_mean(item: Aggregate | None) -> str:
    """``0.750 ± 0.020`` (or ``-`` without rows)."""
    if item is None or item.mean is None:
        return "-"
    return f"{item.mean:.3f} ± {item.std:.3f}"


def format_number(value: float | None, digits: int) -> str:
    """``value`` with ``digits`` decimals, or ``-`` when there is none."""
    return "-" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def summary_cells(item: Aggregate | None) -> list[str]:
    """One proposer's row of a report table, as text.

    The cells: metric (mean ± std over seeds), time per case (s), tokens per case, cases.
    """
    return [
        format_mean(item),
        format_number(item.time_s if item else None, 2),
        format_number(item.tokens if item else None, 1),
        str(item.cases if item else 0),
    ]


__all__ = [
    "OVERALL",
    "Aggregate",
    "EvalReport",
    "ReportLabels",
    "aggregate",
    "format_mean",
    "format_number",
    "summary_cells",
]
