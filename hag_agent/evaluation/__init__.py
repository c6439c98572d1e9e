"""The evaluation harness: compare who chooses the decoding settings, on the same cases and seeds.

- `hag_agent.evaluation.settings`: what to compare and how (`EvalSettings`): any registered
  proposer (`hag_agent.proposing`; the built-ins are in `hag_agent.proposers`);
- `hag_agent.evaluation.proposers`: how each proposer's runs are set up and keyed;
- `hag_agent.evaluation.cases`: restricting the cases to those a file names;
- `hag_agent.evaluation.rows`: one row per case x proposer x seed, kept for resuming;
- `hag_agent.evaluation.harness`: the run (`run_eval`, `evaluate`);
- `hag_agent.evaluation.comparison`: each proposer against the prior and the default, paired,
  with a bootstrap interval (`Comparison`);
- `hag_agent.evaluation.report`: the aggregates (`EvalReport`);
- `hag_agent.evaluation.report_files`: ``report.json``, ``report.md`` and ``chart.png``.

The public names of those modules are re-exported here. A jobs-layer package: it may import
the core, backends, data, metrics and the plug-ins (proposers), never the CLI, chat or rich; it
reports progress through a `hag_agent.progress.ProgressCallback`.
"""

from hag_agent.evaluation.cases import case_ids_from
from hag_agent.evaluation.comparison import Comparison, compare, compare_all
from hag_agent.evaluation.harness import evaluate, run_eval
from hag_agent.evaluation.proposers import ProposerInputs, run_settings
from hag_agent.evaluation.report import (
    OVERALL,
    Aggregate,
    EvalReport,
    ReportLabels,
    aggregate,
    format_mean,
)
from hag_agent.evaluation.report_files import (
    EVAL_EXTRA_HINT,
    REPORT_JSON,
    REPORT_MD,
    REPORT_PNG,
    draw_chart,
    render_markdown,
    require_matplotlib,
    write_reports,
)
from hag_agent.evaluation.rows import (
    ROWS_FILE,
    EvalRow,
    Failure,
    prompt_digest,
    read_rows,
    setup_digest,
)
from hag_agent.evaluation.settings import EvalSettings

__all__ = [
    "EVAL_EXTRA_HINT",
    "OVERALL",
    "REPORT_JSON",
    "REPORT_MD",
    "REPORT_PNG",
    "ROWS_FILE",
    "Aggregate",
    "Comparison",
    "EvalReport",
    "EvalRow",
    "EvalSettings",
    "Failure",
    "ProposerInputs",
    "ReportLabels",
    "aggregate",
    "case_ids_from",
    "compare",
    "compare_all",
    "draw_chart",
    "evaluate",
    "format_mean",
    "prompt_digest",
    "read_rows",
    "render_markdown",
    "require_matplotlib",
    "run_eval",
    "run_settings",
    "setup_digest",
    "write_reports",
]
