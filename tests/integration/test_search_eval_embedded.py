"""The pipeline's first two steps on the real embedded model, at toy size, through the console script:
a suite -> the search (fine-tuning records) -> the harness with the oracle from those records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from hag_agent.data.search_records import read_records
from hag_agent.hyperparameters import DecodingBounds, HyperParams
from hag_agent.proposal import parse_proposal
from hag_agent.tasks import TASK_PRIORS, TaskKind

SCRIPT = str(Path(sys.executable).with_name("hag-agent"))


def hag(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SCRIPT, *args], capture_output=True, text=True, timeout=600, env=dict(os.environ)
    )


def test_search_then_eval_with_the_oracle(tmp_path: Path) -> None:
    suite = tmp_path / "suite.jsonl"
    assert (
        hag("dataset", "make", "arithmetic", "--n", "2", "--seed", "3", "-o", str(suite)).returncode
        == 0
    )
    records = tmp_path / "search.jsonl"
    search = hag(
        "dataset", "search", str(suite), "-o", str(records), "--samples", "1",
        "--budget", "6", "--max-tokens", "12", "--quiet",
    )  # fmt: skip
    assert search.returncode == 0, search.stderr
    found = read_records(records)
    assert [r.id for r in found] == [
        json.loads(line)["id"] for line in suite.read_text().splitlines()
    ]
    for record in found:
        assert record.model_calls <= 6 and record.evaluations <= 6
        assert len(record.evaluated) >= 3  # default, prior, and at least one searched config
        assert record.score >= record.default_score and record.score >= record.prior_score
        # The SFT target parses back to the best params exactly.
        parsed = parse_proposal(
            record.proposal, prior=TASK_PRIORS[TaskKind.MATH], bounds=DecodingBounds()
        )
        assert parsed.fallback_reason is None
        assert parsed.params == HyperParams.model_validate(record.params)

    again = hag("dataset", "search", str(suite), "-o", str(records), "--samples", "1",
                "--budget", "6", "--max-tokens", "12", "--quiet")  # fmt: skip
    assert again.returncode == 0 and len(read_records(records)) == 2  # resumed: nothing redone

    out = tmp_path / "eval"
    done = hag(
        "eval", "--suite", str(suite), "--proposers", "default,prior,oracle",
        "--search", str(records), "--max-tokens", "12", "--out", str(out), "--quiet",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads((out / "report.json").read_text())
    rows = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    assert len(rows) == 6
    oracle = {r["case_id"]: r["params"] for r in rows if r["proposer"] == "oracle"}
    for record in found:
        assert oracle[record.id] == {**record.params, "max_tokens": 12}
    assert (out / "report.md").read_text().count("| oracle |") >= 1  # overall and per task
    assert (out / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert report["rows"] == 6 and report["settings"]["proposers"] == ["default", "prior", "oracle"]
