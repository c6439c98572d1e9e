"""The evaluation harness: compare who chooses the decoding settings, on the same cases and seeds.

Proposers (the paper's comparison, plus its upper bound):

- ``default``: `DEFAULT_PARAMS` (decoder defaults), via proposer ``fixed``;
- ``random``: temperature, top_p, top_k and repetition_penalty drawn uniformly within the
  `DecodingBounds` (top_k off with probability 1/5, else a uniform integer in its range), min_p
  0 and the task prior's max_tokens; drawn from ``(seed, case id)`` only, so reproducible;
- ``prior``: the task prior (proposer ``prior``);
- ``self``: the model proposes its own settings (proposer ``self``: HAG);
- ``oracle``: the best configuration per case from a search file (`hag_agent.data.search`).

Every case x proposer x seed runs once through `HAGRunnable` with the task pinned to the case's
task and, by default, critique off (one attempt: the paper's single-shot setting). Each row
records the case metric (`hag_agent.metrics.metric_value`), the wall time of the run (proposal
call included) and the answer's generated tokens (decision calls report none). Rows are appended
to ``rows.jsonl`` in the output folder as they finish, so a rerun skips them and a backend
failure loses no finished result; a row is reused only for the same case prompt and the same
setup (backend, its options, critique, retries, max_tokens pin: `setup_digest`).

Aggregates, per task and overall (all cases weighted equally): the mean metric is the mean over
seeds of each seed's mean over cases, the spread is the standard deviation of those per-seed
means (0 with one seed); time and tokens are means per case run.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import random
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from rich.console import Console

from hag_agent.data.search import append_line, progress_bar, read_records
from hag_agent.data.suites import SuiteCase
from hag_agent.errors import ConfigurationError, HAGError, HAGInputError
from hag_agent.hyperparameters import DecodingBounds, HyperParams
from hag_agent.tasks import DEFAULT_PARAMS, TASK_PRIORS

ProposerName = Literal["default", "random", "prior", "self", "oracle"]
PROPOSERS: tuple[str, ...] = get_args(ProposerName)
"""Every proposer the harness knows, in report order."""

ROWS_FILE = "rows.jsonl"
REPORT_JSON = "report.json"
REPORT_MD = "report.md"
REPORT_PNG = "chart.png"
OVERALL = "overall"
EVAL_EXTRA_HINT = "pip install 'hag-agent[eval]'"


# -- proposers ---------------------------------------------------------------------------------


def parse_proposers(value: str | Sequence[str]) -> list[ProposerName]:
    """Proposer names from ``"default,random,..."`` or a list, deduplicated, in given order.

    Raises:
        HAGInputError: For an unknown name (the message lists the valid ones) or none at all.
    """
    items = value.split(",") if isinstance(value, str) else list(value)
    names: list[ProposerName] = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        if item not in PROPOSERS:
            raise HAGInputError(
                f"unknown proposer {item!r}; valid proposers: {', '.join(PROPOSERS)}"
            )
        if item not in names:
            names.append(item)  # type: ignore[arg-type]  # checked against PROPOSERS above
    if not names:
        raise HAGInputError(f"no proposer given; valid proposers: {', '.join(PROPOSERS)}")
    return names


def random_params(case: SuiteCase, seed: int, bounds: DecodingBounds | None = None) -> HyperParams:
    """The ``random`` proposer's configuration for one case and seed (see the module docstring)."""
    bounds = bounds or DecodingBounds()
    rng = random.Random(f"hag-random:{seed}:{case.id}")

    def uniform(key: str) -> float:
        rng_range = getattr(bounds, key)
        return round(rng.uniform(rng_range.low, rng_range.high), 3)

    temperature = uniform("temperature")
    top_p = uniform("top_p")
    repetition_penalty = uniform("repetition_penalty")
    off = rng.random() < 0.2
    top_k = 0 if off else rng.randint(int(bounds.top_k.low), int(bounds.top_k.high))
    max_tokens = int(bounds.clamp_value("max_tokens", TASK_PRIORS[case.task].max_tokens) or 1)
    return HyperParams(
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        min_p=0.0,
        repetition_penalty=repetition_penalty,
        max_tokens=max_tokens,
    )


def oracle_params(
    search_file: str | Path,
    cases: Sequence[SuiteCase],
    *,
    warn: Callable[[str], None] | None = None,
) -> dict[str, HyperParams]:
    """The best configuration of each case from a search file.

    Raises:
        HAGInputError: When the file is missing or lacks a record for some case (listed).
    """
    path = Path(search_file)
    if not path.is_file():
        raise HAGInputError(f"no such search file: {path}")
    records = {r.id: r for r in read_records(path, warn=warn)}
    missing = [c.id for c in cases if c.id not in records]
    if missing:
        shown = ", ".join(missing[:10]) + (
            f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        )
        raise HAGInputError(
            f"search file {path} has no record for {len(missing)} of {len(cases)} case(s): "
            f"{shown}; run `hag-agent dataset search` on the same suite first"
        )
    return {c.id: records[c.id].best_params() for c in cases}


def proposer_settings(
    proposer: ProposerName,
    case: SuiteCase,
    seed: int,
    *,
    oracle: Mapping[str, HyperParams] | None = None,
    bounds: DecodingBounds | None = None,
) -> dict[str, Any]:
    """The `HAGContext` settings that make a run use one proposer's configuration."""
    if proposer == "default":
        return {"proposer": "fixed", "fixed_params": DEFAULT_PARAMS}
    if proposer == "random":
        return {"proposer": "fixed", "fixed_params": random_params(case, seed, bounds)}
    if proposer == "prior":
        return {"proposer": "prior"}
    if proposer == "self":
        return {"proposer": "self"}
    if oracle is None or case.id not in oracle:
        raise HAGInputError(f"proposer oracle has no configuration for case {case.id!r}")
    return {"proposer": "fixed", "fixed_params": oracle[case.id]}


# -- settings, rows, report ------------------------------------------------------------------


def _default_proposers() -> list[ProposerName]:
    return ["default", "random", "prior", "self"]


class EvalSettings(BaseModel):
    """What to compare and how."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    proposers: list[ProposerName] = Field(default_factory=_default_proposers)
    """Proposers to compare."""
    seeds: int = Field(default=1, ge=1, le=1000)
    """How many seeds: ``base_seed .. base_seed + seeds - 1``."""
    base_seed: int = Field(default=0, ge=0)
    """The first seed."""
    critique: bool = False
    """Critique and retry (off: one attempt, the paper's single-shot setting)."""
    max_retries: int | None = Field(default=None, ge=0, le=10)
    """Retries when critique is on (None: the run default)."""
    max_tokens: int | None = Field(default=None, ge=1)
    """Pin max_tokens for every proposer (None: each proposer's own)."""
    concurrency: int = Field(default=1, ge=1, le=256)
    """Runs in flight at once."""
    stop_on_error: bool = False
    """Stop taking new runs after the first failed one."""

    def seed_list(self) -> list[int]:
        """The seeds, in order."""
        return [self.base_seed + i for i in range(self.seeds)]


def prompt_digest(prompt: str) -> str:
    """A short fingerprint of a prompt, so a row is never reused for a different case."""
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:16]


def setup_digest(
    backend: str, backend_options: Mapping[str, Any] | None, settings: EvalSettings
) -> str:
    """A short fingerprint of what makes two runs of one row comparable.

    The backend, its options, critique, retries and the max_tokens pin; not proposers, seeds or
    concurrency.
    """
    data = {
        "backend": backend,
        "options": dict(backend_options or {}),
        "critique": settings.critique,
        "max_retries": settings.max_retries,
        "max_tokens": settings.max_tokens,
    }
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class EvalRow(BaseModel):
    """One case x proposer x seed run."""

    model_config = ConfigDict(extra="forbid")

    case_id: str
    """The case."""
    task: str
    """Its task kind."""
    metric_name: str
    """Its metric."""
    proposer: str
    """Who chose the configuration."""
    seed: int
    """The sampling seed."""
    prompt_sha: str
    """`prompt_digest` of the case prompt."""
    critique: bool
    """Whether critique was on."""
    setup: str
    """`setup_digest` of the run's backend and settings: rows of another setup are not reused."""
    metric: float
    """The case metric of the answer, in [0, 1]."""
    time_s: float
    """Wall time of the whole run."""
    tokens: int | None
    """Tokens generated for the answer(s), where the backend reports them."""
    attempts: int
    """Attempts made."""
    params: dict[str, float | int] | None
    """The configuration of the chosen attempt."""
    output: str
    """The answer."""

    def key(self) -> tuple[str, str, int, str, str]:
        """What identifies the run for resuming."""
        return (self.case_id, self.proposer, self.seed, self.prompt_sha, self.setup)


class Failure(BaseModel):
    """A run that failed (no row was written)."""

    model_config = ConfigDict(extra="forbid")

    case_id: str
    """The case."""
    proposer: str
    """The proposer."""
    seed: int
    """The seed."""
    error: str
    """What went wrong."""


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


class EvalReport(BaseModel):
    """Everything the reports show."""

    model_config = ConfigDict(extra="forbid")

    command: str
    """The command line that reproduces the run."""
    suite: str
    """The suite name or file."""
    backend: str
    """The backend, in words."""
    backend_options: dict[str, Any] = Field(default_factory=dict)
    """The backend's options as given."""
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


def read_rows(path: Path, *, warn: Callable[[str], None] | None = None) -> list[EvalRow]:
    """Rows of a ``rows.jsonl`` file; a partial or unreadable line is reported and skipped."""
    if not path.exists():
        return []
    rows: list[EvalRow] = []
    data = path.read_bytes()
    lines = data.split(b"\n")
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            rows.append(EvalRow.model_validate_json(raw))
        except ValidationError:
            if warn is not None:
                warn(f"{path}:{number}: unreadable row; skipped (it will be run again)")
    if data and not data.endswith(b"\n"):  # a partial last line: cut it so appends stay aligned
        with path.open("r+b") as handle:
            handle.truncate(data.rfind(b"\n") + 1)
    return rows


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


# -- the run ---------------------------------------------------------------------------------------


def _tokens(result: Any) -> int | None:
    counts = [a.completion_tokens for a in result.attempts if a.completion_tokens is not None]
    return sum(counts) if counts else None


async def run_eval(
    cases: Sequence[SuiteCase],
    model: Any,
    out_dir: str | Path,
    settings: EvalSettings | None = None,
    *,
    oracle: Mapping[str, HyperParams] | None = None,
    suite: str = "",
    backend_label: str = "",
    backend_options: Mapping[str, Any] | None = None,
    command: str = "",
    show_progress: bool = False,
    console: Console | None = None,
    warn: Callable[[str], None] | None = None,
    on_failure: Callable[[Failure], None] | None = None,
) -> EvalReport:
    """Run every case x proposer x seed not already in ``out_dir/rows.jsonl``; aggregate all.

    Args:
        cases: The cases.
        model: A `Backend` or LangChain chat model (resolve a named backend first).
        out_dir: The output folder (created); rows are appended to ``rows.jsonl`` there.
        settings: Proposers, seeds, critique, concurrency.
        oracle: Best configurations by case id (needed for proposer ``oracle``).
        suite: How to name the suite in the report.
        backend_label: How to name the backend in the report.
        backend_options: The backend's options, for the report.
        command: The command line, for the report.
        show_progress: Show a progress bar (only on a terminal).
        console: Where the progress bar goes (stderr by default).
        warn: Receives messages about unreadable rows.
        on_failure: Called for each failed run.

    Returns:
        The report (not yet written; see `write_reports`).

    Raises:
        HAGInputError: For proposer ``oracle`` without a configuration for every case.
    """
    from hag_agent.metrics import metric_value
    from hag_agent.runnable import HAGRunnable

    settings = settings or EvalSettings()
    if "oracle" in settings.proposers:
        missing = [c.id for c in cases if oracle is None or c.id not in oracle]
        if missing:
            raise HAGInputError(
                f"proposer oracle needs a search configuration for every case; missing: "
                f"{', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}"
            )
    start = time.perf_counter()
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    rows_path = folder / ROWS_FILE
    setup = setup_digest(backend_label or type(model).__name__, backend_options, settings)
    wanted = {
        (c.id, p, s, prompt_digest(c.prompt), setup)
        for c in cases
        for p in settings.proposers
        for s in settings.seed_list()
    }
    done: dict[tuple[str, str, int, str, str], EvalRow] = {}
    for row in read_rows(rows_path, warn=warn):
        if row.key() in wanted:
            done[row.key()] = row
    reused = len(done)
    jobs = [
        (case, proposer, seed)
        for seed in settings.seed_list()
        for case in cases
        for proposer in settings.proposers
        if (case.id, proposer, seed, prompt_digest(case.prompt), setup) not in done
    ]
    runnable = HAGRunnable(model=model)
    fixed: dict[str, Any] = {"critique": settings.critique}
    if settings.critique and settings.max_retries is not None:
        fixed["max_retries"] = settings.max_retries
    if settings.max_tokens is not None:
        fixed["params"] = {"max_tokens": settings.max_tokens}
    failures: list[Failure] = []
    stop = asyncio.Event()
    position = 0

    async def one(case: SuiteCase, proposer: ProposerName, seed: int) -> EvalRow:
        chosen = proposer_settings(proposer, case, seed, oracle=oracle)
        began = time.perf_counter()
        result = await runnable.ainvoke(
            {"prompt": case.prompt, "task": case.task, "seed": seed, **fixed, **chosen}
        )
        elapsed = time.perf_counter() - began
        return EvalRow(
            case_id=case.id,
            task=case.task.value,
            metric_name=case.metric_name,
            proposer=proposer,
            seed=seed,
            prompt_sha=prompt_digest(case.prompt),
            critique=settings.critique,
            setup=setup,
            metric=float(metric_value(case, result.text)),
            time_s=round(elapsed, 4),
            tokens=_tokens(result),
            attempts=len(result.attempts),
            params=result.params.model_dump() if result.params else None,
            output=result.text,
        )

    with progress_bar(console, enabled=show_progress) as progress:
        bar = progress.add_task("eval", total=len(jobs), note="")

        async def worker() -> None:
            nonlocal position
            while not stop.is_set() and position < len(jobs):
                case, proposer, seed = jobs[position]
                position += 1
                try:
                    row = await one(case, proposer, seed)
                except HAGError as exc:
                    failure = Failure(case_id=case.id, proposer=proposer, seed=seed, error=str(exc))
                    failures.append(failure)
                    if on_failure is not None:
                        on_failure(failure)
                    if settings.stop_on_error:
                        stop.set()
                else:
                    append_line(rows_path, row.model_dump_json())
                    done[row.key()] = row
                progress.update(bar, advance=1, note=f"{len(failures)} failed")

        workers = [
            asyncio.ensure_future(worker()) for _ in range(min(settings.concurrency, len(jobs)))
        ]
        try:
            outcomes = await asyncio.gather(*workers, return_exceptions=True)
        except BaseException:
            for task in workers:
                task.cancel()
            raise
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    rows = list(done.values())
    tasks: list[str] = []
    metrics: dict[str, list[str]] = {}
    for case in cases:
        if case.task.value not in tasks:
            tasks.append(case.task.value)
        names = metrics.setdefault(case.task.value, [])
        if case.metric_name not in names:
            names.append(case.metric_name)
    return EvalReport(
        command=command,
        suite=suite,
        backend=backend_label or type(model).__name__,
        backend_options=dict(backend_options or {}),
        settings=settings,
        cases=len(cases),
        metrics=metrics,
        tasks=tasks,
        aggregates=aggregate(rows, settings.proposers, tasks),
        failures=failures,
        rows=len(rows),
        reused_rows=reused,
        wall_s=round(time.perf_counter() - start, 3),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def evaluate(
    cases: Sequence[SuiteCase],
    model: Any,
    out_dir: str | Path,
    settings: EvalSettings | None = None,
    **options: Any,
) -> EvalReport:
    """Synchronous `run_eval` (starts its own event loop)."""
    return asyncio.run(run_eval(cases, model, out_dir, settings, **options))


# -- reports ---------------------------------------------------------------------------------------


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def format_mean(item: Aggregate | None) -> str:
    """``0.750 ± 0.020`` (or ``-`` without rows)."""
    if item is None or item.mean is None:
        return "-"
    return f"{item.mean:.3f} ± {item.std:.3f}"


def _markdown_table(report: EvalReport, task: str) -> list[str]:
    lines = [
        "| proposer | metric (mean ± std over seeds) | time / case (s) | tokens / case | cases |",
        "|---|---|---|---|---|",
    ]
    for proposer in report.settings.proposers:
        item = report.aggregate(task, proposer)
        lines.append(
            f"| {proposer} | {format_mean(item)} | {_number(item.time_s if item else None, 2)} "
            f"| {_number(item.tokens if item else None, 1)} | {item.cases if item else 0} |"
        )
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


def draw_chart(report: EvalReport, path: str | Path) -> None:
    """A PNG bar chart: mean metric per task and overall, one bar per proposer, std as error bar.

    Raises:
        ConfigurationError: When matplotlib is missing.
    """
    require_matplotlib()
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    groups = [*report.tasks, OVERALL]
    proposers = report.settings.proposers
    figure = Figure(figsize=(max(7.0, 1.4 * len(groups) + 3), 4.0), dpi=110)
    axes = figure.add_subplot()
    width = 0.8 / max(len(proposers), 1)
    for j, proposer in enumerate(proposers):
        means: list[float] = []
        errors: list[float] = []
        for group in groups:
            item = report.aggregate(group, proposer)
            means.append(item.mean if item and item.mean is not None else math.nan)
            errors.append(item.std if item else 0.0)
        positions = [i - 0.4 + width * (j + 0.5) for i in range(len(groups))]
        axes.bar(positions, means, width, yerr=errors, capsize=3, label=proposer)
    axes.set_xticks(range(len(groups)), groups)
    axes.set_ylim(0.0, 1.05)
    axes.set_ylabel("mean metric (± std over seeds)")
    axes.set_title(f"{report.suite}: {report.backend}")
    axes.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))
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
    "PROPOSERS",
    "Aggregate",
    "EvalReport",
    "EvalRow",
    "EvalSettings",
    "Failure",
    "ProposerName",
    "aggregate",
    "draw_chart",
    "evaluate",
    "format_mean",
    "oracle_params",
    "parse_proposers",
    "proposer_settings",
    "random_params",
    "read_rows",
    "render_markdown",
    "require_matplotlib",
    "run_eval",
    "setup_digest",
    "write_reports",
]
