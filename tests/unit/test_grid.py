"""The exhaustive grid path: plan, sample files, scoring into search records, and its commands."""

from __future__ import annotations

import ast
import gzip
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import pytest
from click.testing import CliRunner

from hag_agent.cli.main import cli
from hag_agent.data.suites import SuiteCase, make_suite
from hag_agent.errors import HAGInputError
from hag_agent.progress import ProgressEvent
from hag_agent.search import grid_sampler, vllm_worker
from hag_agent.search.grid_plan import DEFAULT_GRID, GridPlan, build_plan
from hag_agent.search.grid_sampler import _generation_kwargs, done_configs
from hag_agent.search.grid_samples import read_samples
from hag_agent.search.grid_scoring import score_plan
from hag_agent.tasks import DEFAULT_PARAMS, TASK_PRIORS, TaskKind

CASES = [
    SuiteCase(id="m1", task=TaskKind.MATH, prompt="What is 2+2?", answer="4"),
    SuiteCase(id="r1", task=TaskKind.REASONING, prompt="Heads?", answer="yes"),
]


def test_plan_starts_with_default_and_each_tasks_prior() -> None:
    plan = build_plan(CASES, samples=4, max_tokens=32)
    assert plan.labels[:3] == ["default", "prior:math", "prior:reasoning"]
    assert plan.params(0) == DEFAULT_PARAMS.model_copy(update={"max_tokens": 32})
    assert plan.params(1) == TASK_PRIORS[TaskKind.MATH].model_copy(update={"max_tokens": 32})
    assert all(c["max_tokens"] == 32 for c in plan.configs)


def test_plan_grid_is_the_whole_product_plus_greedy_without_repeats() -> None:
    plan = build_plan(CASES, samples=4, max_tokens=32)
    grid = [c for c, label in zip(plan.configs, plan.labels, strict=True) if label == "grid"]
    keys = {json.dumps(c, sort_keys=True) for c in plan.configs}
    assert len(keys) == len(plan.configs)
    product = 1
    for values in DEFAULT_GRID.values():
        product *= len(values)
    greedy = len(DEFAULT_GRID["repetition_penalty"])
    # The default (1.0, 1.0, off, 1.0) is also a grid point: it is kept once, as "default".
    assert len(grid) == product + greedy - 1
    assert sum(1 for c in grid if c["temperature"] == 0.0) == greedy


def test_plan_order_is_seeded() -> None:
    a = build_plan(CASES, samples=2, max_tokens=8, seed=1)
    assert build_plan(CASES, samples=2, max_tokens=8, seed=1).configs == a.configs
    assert build_plan(CASES, samples=2, max_tokens=8, seed=2).configs != a.configs


def test_plan_rejects_a_grid_without_every_key_and_misaligned_labels() -> None:
    with pytest.raises(ValueError, match="exactly the keys"):
        build_plan(CASES, samples=2, max_tokens=8, grid={"temperature": (0.5,)})
    plan = build_plan(CASES, samples=2, max_tokens=8)
    with pytest.raises(ValueError, match="labels"):
        GridPlan.model_validate({**plan.model_dump(), "labels": ["default"]})


def test_generation_kwargs_greedy_and_sampled() -> None:
    greedy = _generation_kwargs({"temperature": 0.0, "repetition_penalty": 1.1}, 16)
    assert greedy == {"max_new_tokens": 16, "repetition_penalty": 1.1, "do_sample": False}
    sampled = _generation_kwargs(
        {"temperature": 0.7, "top_p": 0.9, "top_k": 0, "min_p": 0.05, "max_tokens": 8}, 16
    )
    assert sampled["do_sample"] is True and sampled["max_new_tokens"] == 8
    assert (sampled["top_k"], sampled["top_p"], sampled["min_p"]) == (0, 0.9, 0.05)
    assert "min_p" not in _generation_kwargs({"temperature": 0.7, "min_p": 0.0}, 16)


def write_samples(folder: Path, lines: Sequence[dict[str, object]], name: str = "00") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"samples-{name}.jsonl.gz"
    for line in lines:  # one gzip member per line, as the sampler appends them
        with gzip.open(path, "at", encoding="utf-8") as handle:
            handle.write(json.dumps(line) + "\n")
    return path


def test_a_cut_sample_file_keeps_what_was_whole(tmp_path: Path) -> None:
    path = write_samples(tmp_path, [{"config": 0, "texts": {}}, {"config": 1, "texts": {}}])
    whole = path.read_bytes()
    with gzip.open(path, "at", encoding="utf-8") as handle:
        handle.write(json.dumps({"config": 2, "texts": {}}) + "\n")
    path.write_bytes(path.read_bytes()[: len(whole) + 12])  # the third member cut short
    assert done_configs(tmp_path) == {0, 1}
    assert set(read_samples(tmp_path)) == {0, 1}


def test_read_samples_needs_sample_files(tmp_path: Path) -> None:
    with pytest.raises(HAGInputError, match="not a grid sampler output"):
        read_samples(tmp_path)


def value_scorer(case: SuiteCase, outputs: Sequence[str]) -> float:
    """Texts are numbers: the score is their mean."""
    del case
    return sum(float(text) for text in outputs) / len(outputs)


def plan_and_samples(values: dict[int, str]) -> tuple[GridPlan, dict[int, dict[str, list[str]]]]:
    """A plan over CASES; config i scores ``values.get(i, "0")`` for every case."""
    plan = build_plan(CASES, samples=2, max_tokens=8)
    samples = {
        i: {case.id: [values.get(i, "0")] * 2 for case in CASES} for i in range(len(plan.configs))
    }
    return plan, samples


def test_score_plan_takes_the_highest_score() -> None:
    plan, samples = plan_and_samples({0: "0.2", 1: "0.3", 7: "0.9"})
    records = score_plan(plan, CASES, samples, scorer=value_scorer, seconds_per_case=1.5)
    math = next(r for r in records if r.id == "m1")
    assert math.params == plan.configs[7] and math.score == pytest.approx(0.9)
    assert (math.default_score, math.prior_score) == (pytest.approx(0.2), pytest.approx(0.3))
    assert math.samples == 2 and math.model_calls == 2 * math.evaluations
    assert (
        math.wall_s == 1.5
        and json.loads(math.proposal)["temperature"] == plan.configs[7]["temperature"]
    )
    # The reasoning prior (config 2) is not one of the math case's candidates.
    assert all(e.params != plan.configs[2] for e in math.evaluated)


def test_ties_go_to_the_prior_then_to_the_nearest_configuration() -> None:
    plan, samples = plan_and_samples({})  # every configuration scores 0
    records = score_plan(plan, CASES, samples, scorer=value_scorer)
    assert {r.id: r.params for r in records} == {"m1": plan.configs[1], "r1": plan.configs[2]}
    prior = TASK_PRIORS[TaskKind.MATH]
    ties = {i: "0.5" for i, label in enumerate(plan.labels) if label == "grid"}
    plan, samples = plan_and_samples(ties)
    math = next(r for r in score_plan(plan, CASES, samples, scorer=value_scorer) if r.id == "m1")
    nearest = min(
        (c for c, label in zip(plan.configs, plan.labels, strict=True) if label == "grid"),
        key=lambda c: (
            abs(c["temperature"] - prior.temperature) / 2
            + abs(c["top_p"] - prior.top_p)
            + abs((c["top_k"] or 200) - prior.top_k) / 200
            + abs(c["repetition_penalty"] - prior.repetition_penalty)
        ),
    )
    assert math.params == nearest


def test_a_case_without_default_samples_is_skipped_with_a_warning() -> None:
    plan, samples = plan_and_samples({})
    del samples[0]
    events: list[ProgressEvent] = []
    assert score_plan(plan, CASES, samples, scorer=value_scorer, progress=events.append) == []
    warnings = [event.message for event in events if event.kind == "note"]
    assert len(warnings) == 2 and "m1" in warnings[0]
    assert events[-1] == ProgressEvent(kind="end", stage="grid-score", done=2, total=2)


def test_a_plan_case_missing_from_the_suites_is_an_input_error() -> None:
    plan, samples = plan_and_samples({})
    with pytest.raises(HAGInputError, match="not in the suites"):
        score_plan(plan, CASES[:1], samples, scorer=value_scorer)


def test_grid_commands_plan_then_score(tmp_path: Path) -> None:
    runner = CliRunner()
    plan_file = tmp_path / "plan.json"
    result = runner.invoke(
        cli, ["dataset", "grid-plan", "arithmetic", "--limit", "2", "--samples", "2",
              "-o", str(plan_file)]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    plan = GridPlan.model_validate_json(plan_file.read_text())
    assert len(plan.cases) == 2 and plan.samples == 2
    answers = {c.id: c.answer for c in make_suite("arithmetic", 2)}
    # Config 3 answers right, every other configuration wrong.
    write_samples(
        tmp_path / "s",
        [
            {"config": i, "texts": {cid: [f"{answers[cid] if i == 3 else 0}"] * 2
                                    for cid in answers}}
            for i in range(len(plan.configs))
        ],
    )  # fmt: skip
    out = tmp_path / "search.jsonl"
    result = runner.invoke(
        cli, ["dataset", "grid-score", "arithmetic", "--limit", "2", "--plan", str(plan_file),
              "--samples-dir", str(tmp_path / "s"), "-o", str(out)]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["params"] for r in records] == [plan.configs[3]] * 2
    assert all(r["score"] == 1.0 and r["default_score"] == 0.0 for r in records)


def test_grid_score_fails_cleanly(tmp_path: Path) -> None:
    runner = CliRunner()
    not_plan = tmp_path / "x.json"
    not_plan.write_text("{}")
    (tmp_path / "s").mkdir()
    result = runner.invoke(
        cli, ["dataset", "grid-score", "arithmetic", "--plan", str(not_plan),
              "--samples-dir", str(tmp_path / "s"), "-o", str(tmp_path / "o.jsonl")]
    )  # fmt: skip
    assert result.exit_code == 2 and "not a grid plan" in result.output
    assert "Traceback" not in result.output


@pytest.mark.needs_extra("train")
def test_grid_sample_fails_cleanly(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        cli, ["dataset", "grid-sample", "--plan", str(tmp_path / "missing.json"),
              "--out", str(tmp_path / "o")]
    )  # fmt: skip
    assert result.exit_code == 2 and "no such file" in result.output
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(build_plan(CASES, samples=1, max_tokens=2).model_dump_json())
    result = runner.invoke(
        cli, ["dataset", "grid-sample", "--plan", str(plan_file), "--out", str(tmp_path / "o"),
              "--model-dir", str(tmp_path / "no-model"), "--device", "cpu"]
    )  # fmt: skip
    assert result.exit_code == 2 and "not a model folder" in result.output, result.output
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    result = runner.invoke(
        cli, ["dataset", "grid-sample", "--plan", str(plan_file), "--out", str(tmp_path / "o"),
              "--model-dir", str(broken), "--device", "cpu"]
    )  # fmt: skip
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output


@pytest.mark.parametrize(("script", "needs"), [(grid_sampler, "torch"), (vllm_worker, "importlib")])
def test_the_standalone_samplers_import_nothing_from_hag_agent(
    script: ModuleType, needs: str
) -> None:
    """They run as plain scripts where only torch and transformers (or vLLM) are installed."""
    assert script.__file__ is not None
    tree = ast.parse(Path(script.__file__).read_text(encoding="utf-8"))
    imported: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "a relative import"
            imported.append(node.module or "")
    assert "argparse" in imported and needs in imported  # the walk sees the imports
    assert not [name for name in imported if name.split(".")[0] == "hag_agent"]


@pytest.mark.parametrize(
    ("script", "option"), [(grid_sampler, "--gguf"), (vllm_worker, "--kv-cache-mb")]
)
def test_the_standalone_samplers_run_as_scripts(
    tmp_path: Path, script: ModuleType, option: str
) -> None:
    assert script.__file__ is not None
    result = subprocess.run(
        [sys.executable, "-I", script.__file__, "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "--plan" in result.stdout or "--model" in result.stdout
    assert option in result.stdout
