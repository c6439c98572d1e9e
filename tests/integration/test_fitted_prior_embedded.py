"""The refitted prior on the real embedded model, through the console script: a grid sampled by
llama.cpp -> its records -> `train prior` -> the harness with proposer fitted-prior."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from hag_agent.data.fitted_priors import fit_priors, read_fitted_priors
from hag_agent.data.search_records import read_records
from hag_agent.tasks import TaskKind

SCRIPT = str(Path(sys.executable).with_name("hag-agent"))


def hag(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SCRIPT, *args], capture_output=True, text=True, timeout=600, env=dict(os.environ)
    )


def test_grid_then_train_prior_then_eval_with_fitted_prior(tmp_path: Path) -> None:
    plan, samples, records = tmp_path / "plan.json", tmp_path / "samples", tmp_path / "grid.jsonl"
    suites = "repeat_exact,talk_at_length"
    made = hag("dataset", "grid-plan", suites, "--limit", "2", "--samples", "2",
               "--max-tokens", "8", "-o", str(plan))  # fmt: skip
    assert made.returncode == 0, made.stderr
    # Cut to its first three configurations (the default, the chat prior, a grid point): the
    # whole grid is 139 of them.
    cut = json.loads(plan.read_text())
    cut.update(configs=cut["configs"][:3], labels=cut["labels"][:3])
    plan.write_text(json.dumps(cut))
    sampled = hag("dataset", "grid-sample", "--plan", str(plan), "--out", str(samples),
                  "--engine", "llamacpp")  # fmt: skip
    assert sampled.returncode == 0, sampled.stderr
    scored = hag("dataset", "grid-score", suites, "--limit", "2", "--plan", str(plan),
                 "--samples-dir", str(samples), "-o", str(records))  # fmt: skip
    assert scored.returncode == 0, scored.stderr

    priors_file = tmp_path / "priors.json"
    fitted = hag("train", "prior", "--data", str(records), "--out", str(priors_file),
                 "--held-out", "0")  # fmt: skip
    assert fitted.returncode == 0, fitted.stderr
    assert "fitted on 4 cases (0 held out)" in fitted.stdout
    priors = read_fitted_priors(priors_file)
    assert priors == fit_priors(read_records(records), source=priors.source)
    chat = priors.tasks[TaskKind.CHAT]
    assert chat.compared == 3 and chat.params.model_dump() in cut["configs"]  # each holds 8

    out = tmp_path / "eval"
    done = hag(
        "eval", "--suite", suites, "--limit", "2", "--proposers", "prior,fitted-prior",
        "--priors", str(priors_file), "--max-tokens", "8", "--out", str(out), "--no-chart",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # Fitted on the cases it is scored on: the harness says so.
    assert "fitted-prior was fitted on 4 of these 4 cases" in done.stderr
    rows = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    served = [r["params"] for r in rows if r["proposer"] == "fitted-prior"]
    assert served == [{**chat.params.model_dump(), "max_tokens": 8}] * 4
    report = json.loads((out / "report.json").read_text())
    against = {(c["proposer"], c["baseline"]) for c in report["comparisons"]}
    assert ("prior", "fitted-prior") in against and ("fitted-prior", "prior") in against
