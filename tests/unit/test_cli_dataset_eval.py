"""``hag-agent dataset`` and ``hag-agent eval`` through click's CliRunner, on a registered fake."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from langchain_core.messages import BaseMessage

from hag_agent.backends.chat_model import ChatModelBackend
from hag_agent.backends.registry import register_backend
from hag_agent.cli.dataset_command import dataset
from hag_agent.cli.eval_command import eval_command
from hag_agent.data.search_records import read_records
from hag_agent.data.suites import builtin_suites, load_cases
from hag_agent.errors import BackendError
from hag_agent.testing import Reply, ScriptedChatModel


def answer(messages: list[BaseMessage], kwargs: dict[str, Any]) -> str:
    return "yes" if kwargs["temperature"] < 0.5 else "no"


def fake_backend(*, fail: bool = False) -> str:
    """Register a fresh fake backend and return its name."""
    name = f"fake-{uuid.uuid4().hex[:8]}"
    script: dict[str, Any] = {
        "generate": [Reply(text="", error=BackendError("server down"))] if fail else [answer],
        "propose": [
            '{"temperature":0.2,"top_p":0.9,"top_k":20,"min_p":0.0,'
            '"repetition_penalty":1.0,"max_tokens":16}'
        ],
    }

    def factory(options: object) -> ChatModelBackend:
        return ChatModelBackend(ScriptedChatModel(script=script))

    register_backend(name, factory)
    return name


def search_args(suite: Path | str, output: Path, backend: str, *options: str) -> list[str]:
    """``dataset search`` arguments: SUITE, -o OUTPUT, --backend, --quiet, then ``options``."""
    return ["search", str(suite), "-o", str(output), "--backend", backend, "--quiet", *options]


def eval_args(suite: Path | str, out: Path, backend: str, *options: str) -> list[str]:
    """``eval`` arguments: --suite, --backend, --out, --quiet, then ``options``."""
    return ["--suite", str(suite), "--backend", backend, "--out", str(out), "--quiet", *options]


@pytest.fixture
def suite_file(tmp_path: Path) -> Path:
    path = tmp_path / "coin.jsonl"
    result = CliRunner().invoke(
        dataset, ["make", "coinflip", "--n", "3", "--seed", "5", "-o", str(path)]
    )
    assert result.exit_code == 0, result.output
    return path


def test_suites_lists_every_builtin_with_its_size() -> None:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(dataset, ["suites"])
    assert result.exit_code == 0
    for spec in builtin_suites().values():
        assert spec.name in result.stdout and str(spec.default_size) in result.stdout


def test_suites_table_is_readable_at_80_columns() -> None:
    result = CliRunner(env={"COLUMNS": "80"}).invoke(dataset, ["suites"])
    assert result.exit_code == 0
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    # Not squeezed to a few letters: whole words, several to a line.
    assert "Last-letter" in result.stdout and "concatenation of" in result.stdout
    words = " ".join(result.stdout.replace("│", " ").split())
    assert "at most 210 cases" in words  # the translation suite's maximum, in its description


def test_make_is_reproducible(tmp_path: Path, suite_file: Path) -> None:
    again = tmp_path / "again.jsonl"
    result = CliRunner().invoke(
        dataset, ["make", "coinflip", "--n", "3", "--seed", "5", "-o", str(again)]
    )
    assert result.exit_code == 0 and "wrote 3 cases" in result.stderr
    assert again.read_bytes() == suite_file.read_bytes()
    assert len(load_cases(again)) == 3


def test_make_unknown_suite_lists_the_valid_ones(tmp_path: Path) -> None:
    result = CliRunner().invoke(dataset, ["make", "nope", "-o", str(tmp_path / "x.jsonl")])
    assert result.exit_code == 2
    assert "unknown suite 'nope'" in result.stderr and "coinflip" in result.stderr
    assert "Traceback" not in result.output


def test_make_unwritable_output_exits_2_naming_it(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")
    output = blocker / "x.jsonl"  # a file's child: the folder cannot be made
    result = CliRunner().invoke(dataset, ["make", "coinflip", "--n", "2", "-o", str(output)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: cannot write {output}: ")
    assert "Traceback" not in result.output


def test_search_writes_records_and_resumes(tmp_path: Path, suite_file: Path) -> None:
    backend = fake_backend()
    out = tmp_path / "search.jsonl"
    args = search_args(suite_file, out, backend, "--samples", "2", "--budget", "6")
    first = CliRunner().invoke(dataset, args)
    assert first.exit_code == 0, first.output
    records = read_records(out)
    assert len(records) == 3 and all(r.evaluations <= 6 for r in records)
    assert "3 searched, 0 already done, 0 failed" in first.stderr
    # The fake answers "yes" when cold, "no" when hot: every case has a configuration that
    # scores 1, cold for the "yes" cases and hot for the "no" ones.
    answers = {c.id: c.answer for c in load_cases(str(suite_file))}
    for record in records:
        assert record.score == 1.0
        assert (record.params["temperature"] < 0.5) == (answers[record.id] == "yes")
        assert json.loads(record.proposal) == record.params
    second = CliRunner().invoke(dataset, args)
    assert second.exit_code == 0 and "0 searched, 3 already done" in second.stderr


def test_search_backend_failure_exits_3_without_traceback(tmp_path: Path, suite_file: Path) -> None:
    out = tmp_path / "search.jsonl"
    result = CliRunner().invoke(
        dataset, search_args(suite_file, out, fake_backend(fail=True), "--budget", "3")
    )
    assert result.exit_code == 3
    assert "server down" in result.stderr and "3 failed" in result.stderr
    assert "Traceback" not in result.output


def test_search_bad_line_skip_or_fail(tmp_path: Path, suite_file: Path) -> None:
    lines = suite_file.read_text(encoding="utf-8").splitlines()
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join([lines[0], "{not json", lines[1]]) + "\n", encoding="utf-8")
    args = search_args(bad, tmp_path / "s.jsonl", fake_backend(), "--budget", "2", "--samples", "1")
    failed = CliRunner().invoke(dataset, args)
    assert failed.exit_code == 2 and f"{bad}:2" in failed.stderr
    skipped = CliRunner().invoke(dataset, [*args, "--on-bad-line", "skip"])
    assert skipped.exit_code == 0, skipped.output
    assert f"{bad}:2" in skipped.stderr and "2 searched" in skipped.stderr


def test_search_rejects_bad_settings(tmp_path: Path, suite_file: Path) -> None:
    result = CliRunner().invoke(
        dataset, ["search", str(suite_file), "-o", str(tmp_path / "s.jsonl"), "--budget", "1"]
    )
    assert result.exit_code == 2 and "budget" in result.output


def test_eval_prints_a_table_and_writes_reports(tmp_path: Path, suite_file: Path) -> None:
    out = tmp_path / "eval"
    backend = fake_backend()
    result = CliRunner(env={"COLUMNS": "200"}).invoke(
        eval_command,
        eval_args(suite_file, out, backend, "--proposers", "default,prior,self", "--seeds", "2"),
    )
    assert result.exit_code == 0, result.output
    for name in ("rows.jsonl", "report.json", "report.md", "chart.png"):
        assert (out / name).exists()
    assert "overall" in result.stdout and "reasoning (yes_no)" in result.stdout
    assert "± " in result.stdout
    assert "95% bootstrap interval" in result.stdout and "wins / ties / losses" in result.stdout
    markdown = (out / "report.md").read_text(encoding="utf-8")
    assert "## Differences" in markdown
    assert f"hag-agent eval --suite {suite_file} --backend {backend}" in markdown
    assert "--seeds 2" in markdown
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["settings"]["proposers"] == ["default", "prior", "self"]
    assert report["rows"] == 3 * 3 * 2


def test_eval_unknown_proposer_lists_the_valid_ones(suite_file: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        eval_command,
        ["--suite", str(suite_file), "--proposers", "default,magic", "--out", str(tmp_path)],
    )
    assert result.exit_code == 2
    assert "unknown proposer 'magic'" in result.stderr
    assert "default, random, prior, self, self-tuned, learned, oracle" in result.stderr


def test_eval_oracle_needs_a_search_file(suite_file: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        eval_command, ["--suite", str(suite_file), "--proposers", "oracle", "--out", str(tmp_path)]
    )
    assert result.exit_code == 2 and "--search" in result.stderr


def test_eval_oracle_from_search_output(tmp_path: Path, suite_file: Path) -> None:
    backend = fake_backend()
    search = tmp_path / "search.jsonl"
    done = CliRunner().invoke(
        dataset, search_args(suite_file, search, backend, "--samples", "1", "--budget", "4")
    )
    assert done.exit_code == 0, done.output
    out = tmp_path / "eval"
    result = CliRunner().invoke(
        eval_command,
        eval_args(suite_file, out, backend, "--proposers", "oracle,default", "--search",
                  str(search), "--no-chart"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    best = {r.id: r.params for r in read_records(search)}
    oracle = [row for row in rows if row["proposer"] == "oracle"]
    assert len(oracle) == 3
    for row in oracle:
        assert row["params"] == best[row["case_id"]]
    assert not (out / "chart.png").exists()


def test_eval_backend_failure_keeps_the_report(tmp_path: Path, suite_file: Path) -> None:
    out = tmp_path / "eval"
    result = CliRunner().invoke(
        eval_command, eval_args(suite_file, out, fake_backend(fail=True), "--proposers", "prior")
    )
    assert result.exit_code == 3
    assert "server down" in result.stderr and "Traceback" not in result.output
    assert (out / "report.md").exists()


def test_several_suites_with_a_limit_each(tmp_path: Path) -> None:
    backend = fake_backend()
    out = tmp_path / "eval"
    result = CliRunner().invoke(
        eval_command,
        eval_args("coinflip,arithmetic", out, backend, "--limit", "2", "--proposers", "prior",
                  "--no-chart"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["cases"] == 4 and report["tasks"] == ["reasoning", "math"]
    search = tmp_path / "s.jsonl"
    done = CliRunner().invoke(
        dataset,
        search_args("coinflip,arithmetic", search, backend, "--limit", "1", "--samples", "1",
                    "--budget", "2"),
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert [r.task for r in read_records(search)] == ["reasoning", "math"]
    clash = CliRunner().invoke(
        eval_command, ["--suite", "coinflip,coinflip", "--backend", backend, "--out", str(out)]
    )
    assert clash.exit_code == 2 and "is in both" in clash.stderr


def test_eval_fixed_takes_its_params_from_the_environment(tmp_path: Path, suite_file: Path) -> None:
    out = tmp_path / "eval"
    fixed = {"temperature": 0.0, "top_p": 1.0, "top_k": 0, "min_p": 0.0}
    fixed |= {"repetition_penalty": 1.0, "max_tokens": 64}
    env = {"HAG_PROPOSER_OPTIONS": json.dumps({"fixed": {"fixed_params": fixed}})}
    result = CliRunner(env=env).invoke(
        eval_command, eval_args(suite_file, out, fake_backend(), "--proposers", "fixed")
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (out / "rows.jsonl").read_text("utf-8").splitlines()]
    assert rows and all(row["params"]["temperature"] == 0.0 for row in rows)
    assert all(row["params"]["top_p"] == 1.0 for row in rows)
