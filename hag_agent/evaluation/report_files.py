"""The report's files: ``report.json``, ``report.md`` and the ``chart.png`` bar chart."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

from hag_agent.errors import ConfigurationError
from hag_agent.evaluation.comparison import (
    BASELINES,
    CONFIDENCE,
    RESAMPLES,
    Comparison,
    format_difference,
    format_record,
)
from hag_agent.evaluation.report import OVERALL, EvalReport, summary_cells

if TYPE_CHECKING:
    from matplotlib.axes import Axes

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
REPORT_PNG = "chart.png"
EVAL_EXTRA_HINT = "pip install 'hag-agent[eval]'"


def _markdown_table(report: EvalReport, task: str) -> list[str]:
    lines = [
        "| proposer | metric (mean ± std over seeds) | time / case (s) | tokens / case | cases |",
        "|---|---|---|---|---|",
    ]
    for proposer in report.settings.proposers:
        cells = [proposer, *summary_cells(report.aggregate(task, proposer))]
        lines.append(f"| {' | '.join(cells)} |")
    return lines


def _differences_section(report: EvalReport) -> list[str]:
    """One table per baseline that ran: each proposer's difference, interval and verdict."""
    baselines = [b for b in BASELINES if b in report.settings.proposers]
    if not baselines:
        return []
    lines = [
        "## Differences",
        "",
        f"Paired on the same case and seed; {CONFIDENCE:.0%} interval from a bootstrap over "
        f"cases, then seeds within each case ({RESAMPLES} resamples). An interval holding 0 is "
        "no measurable difference. Wins / ties / losses count cases by their mean over seeds.",
    ]
    for baseline in baselines:
        lines += [
            "",
            f"### Against {baseline}",
            "",
            "| task | proposer | difference [95% interval] | verdict | wins / ties / losses |",
            "|---|---|---|---|---|",
        ]
        for task in [OVERALL, *report.tasks]:
            lines += [
                f"| {task} | {c.proposer} | {format_difference(c)} | {c.verdict} "
                f"| {format_record(c)} |"
                for c in report.comparisons_with(baseline, task)
            ]
    return lines


def render_markdown(report: EvalReport) -> str:
    """The Markdown report: settings, then a table overall and one per task."""
    settings = report.settings
    seeds = ", ".join(str(s) for s in settings.seed_list())
    options = ", ".join(f"{k}={v}" for k, v in sorted(report.backend_options.items()))
    critique = (
        f"on (max_retries {settings.max_retries})"
        if settings.critique and settings.max_retries is not None
        else ("on" if settings.critique else "off (one attempt per run)")
    )
    lines = [
        "# hag-agent evaluation",
        "",
        f"Command: `{report.command}`" if report.command else "",
        "",
        f"- suite: {report.suite} ({report.cases} cases)",
        f"- backend: {report.backend}" + (f" ({options})" if options else ""),
        f"- proposers: {', '.join(settings.proposers)}",
        f"- seeds: {seeds}",
        f"- critique: {critique}",
        f"- max_tokens: {settings.max_tokens if settings.max_tokens else 'each proposer own'}",
        f"- runs: {report.rows} aggregated ({report.reused_rows} from an earlier invocation), "
        f"{len(report.failures)} failed",
        f"- created: {report.created}; wall time {report.wall_s:.1f} s",
        "",
        "Metric: mean over seeds of the per-seed mean over cases, ± the standard deviation of "
        "those per-seed means. Time is the wall time of a whole run (proposal included); tokens "
        "are the answer's generated tokens.",
        "",
        "## Overall",
        "",
        *_markdown_table(report, OVERALL),
        "",
        *_differences_section(report),
    ]
    for task in report.tasks:
        metrics = ", ".join(report.metrics.get(task, []))
        lines += ["", f"## {task} (metric: {metrics})", "", *_markdown_table(report, task)]
    if report.failures:
        lines += ["", "## Failed runs", ""]
        lines += [
            f"- {f.case_id} / {f.proposer} / seed {f.seed}: {f.error}" for f in report.failures
        ]
    return "\n".join(lines).replace("\n\n\n", "\n\n") + "\n"


def require_matplotlib() -> None:
    """Fail early, with the install command, when matplotlib is missing.

    Raises:
        ConfigurationError: Naming ``pip install 'hag-agent[eval]'``.
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ConfigurationError(
            f"the chart needs matplotlib, which is not installed: {EVAL_EXTRA_HINT}"
        ) from exc


def _means_panel(axes: Axes, report: EvalReport, groups: list[str]) -> None:
    """Mean metric per group, one bar per proposer, the std over seeds as error bar."""
    proposers = report.settings.proposers
    width = 0.8 / max(len(proposers), 1)
    for j, proposer in enumerate(proposers):
        items = [report.aggregate(group, proposer) for group in groups]
        means = [item.mean if item and item.mean is not None else math.nan for item in items]
        errors = [item.std if item else 0.0 for item in items]
        positions = [i - 0.4 + width * (j + 0.5) for i in range(len(groups))]
        axes.bar(positions, means, width, yerr=errors, capsize=3, label=proposer, color=f"C{j}")
    axes.set_xticks(range(len(groups)), groups)
    axes.set_ylim(0.0, 1.05)
    axes.set_ylabel("mean metric (± std over seeds)")
    axes.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))


def _error_bar(item: Comparison | None) -> tuple[float, float, float]:
    """A difference's bar height and its interval's distances below and above it."""
    if item is None or item.difference is None:
        return math.nan, 0.0, 0.0
    if item.low is None or item.high is None:
        return item.difference, 0.0, 0.0
    return item.difference, item.difference - item.low, item.high - item.difference


def _differences_panel(axes: Axes, report: EvalReport, groups: list[str], baseline: str) -> None:
    """Each proposer's difference to ``baseline`` per group, its 95% interval as error bar."""
    proposers = [p for p in report.settings.proposers if p != baseline]
    width = 0.8 / max(len(proposers), 1)
    for j, proposer in enumerate(proposers):
        items = [
            next((c for c in report.comparisons_with(baseline, g) if c.proposer == proposer), None)
            for g in groups
        ]
        values, below, above = zip(*(_error_bar(c) for c in items), strict=True)
        positions = [i - 0.4 + width * (j + 0.5) for i in range(len(groups))]
        axes.bar(
            positions,
            values,
            width,
            yerr=[list(below), list(above)],
            capsize=3,
            label=proposer,
            # The colour each proposer has in the means panel.
            color=f"C{report.settings.proposers.index(proposer)}",
        )
    axes.axhline(0.0, color="black", linewidth=0.8)
    axes.set_xticks(range(len(groups)), groups)
    axes.set_ylabel(f"difference to {baseline} ({CONFIDENCE:.0%} interval)")
    axes.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))


def draw_chart(report: EvalReport, path: str | Path) -> None:
    """A PNG chart: mean metric per task and overall, and each proposer's difference to a baseline.

    The top panel has one bar per proposer with the std over seeds as error bar; the bottom one
    (when the prior or the default ran) the paired difference to it with its 95% interval.

    Raises:
        ConfigurationError: When matplotlib is missing.
    """
    require_matplotlib()
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    groups = [*report.tasks, OVERALL]
    baseline = next((b for b in BASELINES if b in report.settings.proposers), None)
    panels = 2 if baseline and len(report.settings.proposers) > 1 else 1
    figure = Figure(figsize=(max(7.0, 1.4 * len(groups) + 3), 4.0 * panels), dpi=110)
    means_axes = figure.add_subplot(panels, 1, 1)
    _means_panel(means_axes, report, groups)
    means_axes.set_title(f"{report.suite}: {report.backend}")
    if panels == 2 and baseline:
        _differences_panel(figure.add_subplot(2, 1, 2), report, groups, baseline)
    figure.tight_layout()
    figure.savefig(str(path), format="png")


def write_reports(report: EvalReport, out_dir: str | Path, *, chart: bool = True) -> list[Path]:
    """Write ``report.json``, ``report.md`` and (with ``chart``) ``chart.png`` into ``out_dir``.

    Returns:
        The files written.

    Raises:
        ConfigurationError: When the chart is asked for and matplotlib is missing (the JSON and
            Markdown reports are written first).
    """
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / REPORT_JSON, folder / REPORT_MD]
    written[0].write_text(
        json.dumps(report.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    written[1].write_text(render_markdown(report), encoding="utf-8")
    if chart:
        draw_chart(report, folder / REPORT_PNG)
        written.append(folder / REPORT_PNG)
    return written


__all__ = [
    "EVAL_EXTRA_HINT",
    "REPORT_JSON",
    "REPORT_MD",
    "REPORT_PNG",
    "draw_chart",
    "render_markdown",
    "require_matplotlib",
    "write_reports",
]
