"""``dataset grid-sample`` on the tiny random Llama: real transformers sampling, stopped and resumed.

The tiny model's texts are noise; the test checks that every (configuration, case) gets K texts
exactly once across a run stopped at its deadline and its rerun, and that the result scores.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from click.testing import CliRunner

from hag_agent.cli.main import cli
from hag_agent.search.grid_plan import GridPlan
from hag_agent.search.grid_sampler import INFO_FILE
from hag_agent.search.grid_samples import read_samples

from .tiny_training import require_train_extra, tiny_base


def test_grid_sample_stops_at_its_deadline_resumes_and_scores(tmp_path: Path) -> None:
    require_train_extra()
    base = tiny_base()
    runner = CliRunner()
    plan_file, out = tmp_path / "plan.json", tmp_path / "samples"
    suite = ["coinflip", "--limit", "2"]
    result = runner.invoke(
        cli, ["dataset", "grid-plan", *suite, "--samples", "2", "--max-tokens", "3",
              "-o", str(plan_file)]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    plan = GridPlan.model_validate_json(plan_file.read_text())
    # The default, the prior and six grid points keep the test to seconds.
    plan = plan.model_copy(update={"configs": plan.configs[:8], "labels": plan.labels[:8]})
    plan_file.write_text(plan.model_dump_json())
    sample = ["dataset", "grid-sample", "--plan", str(plan_file), "--out", str(out),
              "--model-dir", str(base), "--device", "cpu"]  # fmt: skip

    # A deadline already past when sampling starts: nothing is sampled, and it says so.
    result = runner.invoke(cli, [*sample, "--deadline-s", "0.000001"])
    assert result.exit_code == 0, result.output
    info = json.loads((out / INFO_FILE).read_text())
    assert (info["stopped_at_deadline"], info["configs_sampled"]) == (True, 0)

    # An earlier run's configurations 0 and 1 are kept, not sampled again.
    earlier = {c.id: ["earlier", "run"] for c in plan.cases}
    with gzip.open(out / "samples-00.jsonl.gz", "at", encoding="utf-8") as handle:
        for index in (0, 1):
            handle.write(json.dumps({"config": index, "texts": earlier}) + "\n")
    result = runner.invoke(cli, sample)
    assert result.exit_code == 0, result.output
    info = json.loads((out / INFO_FILE).read_text())
    assert info["stopped_at_deadline"] is False
    assert info["configs_sampled"] == len(plan.configs) - 2
    samples = read_samples(out)
    assert sorted(samples) == list(range(len(plan.configs)))
    assert samples[0] == samples[1] == earlier
    for texts in samples.values():
        assert sorted(texts) == sorted(c.id for c in plan.cases)
        assert all(len(k_texts) == 2 for k_texts in texts.values())

    records = tmp_path / "search.jsonl"
    result = runner.invoke(
        cli, ["dataset", "grid-score", *suite, "--plan", str(plan_file),
              "--samples-dir", str(out), "-o", str(records)]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in records.read_text().splitlines()]
    assert [r["id"] for r in lines] == [c.id for c in plan.cases]
    # One task, one prior: every configuration of the plan is a candidate of every case.
    assert all(r["evaluations"] == len(plan.configs) for r in lines)
