"""Fine-tuning data from search output: examples, the held-out split, strict reading, scoring.

Hermetic and torch-free: nothing here imports the training packages.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from hag_agent.cli.train_command import report_table, train
from hag_agent.data.search_records import SearchRecord, read_records
from hag_agent.errors import HAGInputError
from hag_agent.hyperparameters import HYPERPARAM_KEYS, DecodingBounds
from hag_agent.proposal import parse_proposal, proposal_prompt
from hag_agent.tasks import TASK_PRIORS, TaskKind
from hag_agent.testing import search_record
from hag_agent.training.held_out import ProposerScore, score_proposals, strictly_parsed
from hag_agent.training.sft import SFTReport, SFTSettings, TrainingSummary, planned_steps
from hag_agent.training.sft_data import (
    held_out_ids,
    sft_example,
    split_records,
)

TASKS = [TaskKind.MATH, TaskKind.CREATIVE, TaskKind.REASONING, TaskKind.TRANSLATION]


def record(i: int, task: TaskKind | None = None, temperature: float | None = None) -> SearchRecord:
    task = task or TASKS[i % len(TASKS)]
    params = TASK_PRIORS[task].model_copy(
        update={"temperature": temperature if temperature is not None else round(0.1 * (i % 13), 1)}
    )
    return search_record(f"case-{i}", task.value, f"Prompt number {i}: is {i} odd?", params)


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


# -- the examples ----------------------------------------------------------------------------


def test_example_prompt_is_exactly_the_run_time_proposal_request() -> None:
    for i, task in enumerate(TaskKind):
        r = record(i, task)
        example = sft_example(r)
        assert example["prompt"] == [{"role": "user", "content": proposal_prompt(task, r.prompt)}]


def test_example_completion_is_the_compact_proposal_json_of_the_best_params() -> None:
    r = record(3, TaskKind.CREATIVE, temperature=1.3)
    (message,) = sft_example(r)["completion"]
    assert message["role"] == "assistant"
    assert message["content"] == r.proposal == r.best_params().to_proposal_json()
    assert " " not in message["content"] and list(json.loads(message["content"])) == list(
        HYPERPARAM_KEYS
    )
    parsed = parse_proposal(
        message["content"], prior=TASK_PRIORS[TaskKind.CREATIVE], bounds=DecodingBounds()
    )
    assert strictly_parsed(parsed) and parsed.params == r.best_params()


# -- the held-out split ----------------------------------------------------------------------


def test_split_is_by_id_deterministic_and_disjoint() -> None:
    records = [record(i) for i in range(200)]
    first = split_records(records, 0.2, seed=7)
    again = split_records(list(reversed(records)), 0.2, seed=7)
    assert set(first.held_out_ids) == set(again.held_out_ids)
    train_ids = {r.id for r in first.train}
    assert train_ids.isdisjoint(first.held_out_ids)
    assert train_ids | set(first.held_out_ids) == {r.id for r in records}
    assert 20 <= len(first.held_out) <= 60  # about 20% of 200
    assert [r.id for r in first.train] == [r.id for r in records if r.id in train_ids]  # file order
    other_seed = split_records(records, 0.2, seed=8)
    assert set(other_seed.held_out_ids) != set(first.held_out_ids)


def test_split_membership_depends_on_the_id_alone() -> None:
    ids = [f"case-{i}" for i in range(100)]
    small = held_out_ids(ids, 0.3, seed=1)
    large = held_out_ids([*ids, *(f"new-{i}" for i in range(100))], 0.3, seed=1)
    assert small == {i for i in large if i.startswith("case-")}


@pytest.mark.parametrize("n", [2, 3, 5])
def test_small_sets_hold_out_at_least_one_and_train_on_at_least_one(n: int) -> None:
    for seed in range(20):
        held = held_out_ids([f"c{i}" for i in range(n)], 0.2, seed)
        assert 1 <= len(held) <= n - 1
        assert held == held_out_ids([f"c{i}" for i in reversed(range(n))], 0.2, seed)
    assert len(held_out_ids([f"c{i}" for i in range(n)], 0.99, 0)) == n - 1


def test_nothing_held_out_for_one_case_or_a_zero_fraction() -> None:
    assert held_out_ids(["only"], 0.5, 0) == set()
    assert held_out_ids([f"c{i}" for i in range(50)], 0.0, 0) == set()


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5])
def test_fraction_outside_zero_one_is_an_input_error(fraction: float) -> None:
    with pytest.raises(HAGInputError, match="held-out fraction"):
        held_out_ids(["a", "b"], fraction, 0)


# -- reading search output strictly ---------------------------------------------------------


def test_reads_records_skipping_blank_lines_and_keeping_the_last_of_an_id(tmp_path: Path) -> None:
    first, second = record(1), record(2)
    updated = record(1, temperature=1.1)
    path = write(
        tmp_path / "s.jsonl",
        [first.model_dump_json(), "", second.model_dump_json(), updated.model_dump_json()],
    )
    loaded = read_records(path, strict=True)
    assert [r.id for r in loaded] == ["case-2", "case-1"]
    assert loaded[1].params["temperature"] == 1.1


def test_a_last_line_without_newline_is_read(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text(record(1).model_dump_json(), encoding="utf-8")
    assert [r.id for r in read_records(path, strict=True)] == ["case-1"]


def test_a_suite_file_is_not_search_output(tmp_path: Path) -> None:
    path = write(
        tmp_path / "suite.jsonl", ['{"id": "c1", "task": "math", "prompt": "1+1?", "answer": "2"}']
    )
    with pytest.raises(HAGInputError) as info:
        read_records(path, strict=True)
    assert f"{path}:1: not a search record" in str(info.value)
    assert "dataset search" in str(info.value)


def test_the_bad_line_is_named(tmp_path: Path) -> None:
    path = write(
        tmp_path / "s.jsonl",
        [
            record(1).model_dump_json(),
            record(2).model_dump_json(),
            "{not json",
            record(4).model_dump_json(),
        ],
    )
    with pytest.raises(HAGInputError, match=r"s\.jsonl:3: not a search record"):
        read_records(path, strict=True)


def test_an_unknown_task_is_named_with_its_line(tmp_path: Path) -> None:
    bad = record(2).model_copy(update={"task": "poetry"})
    path = write(tmp_path / "s.jsonl", [record(1).model_dump_json(), bad.model_dump_json()])
    with pytest.raises(HAGInputError, match=r"s\.jsonl:2: unknown task 'poetry'"):
        read_records(path, strict=True)


def test_params_out_of_range_are_named_with_their_line(tmp_path: Path) -> None:
    bad = record(1).model_copy(update={"params": {**record(1).params, "top_p": 7.0}})
    path = write(tmp_path / "s.jsonl", [bad.model_dump_json()])
    with pytest.raises(HAGInputError, match=r"s\.jsonl:1: params are not a valid configuration"):
        read_records(path, strict=True)


def test_empty_and_missing_files_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(HAGInputError, match="no search records"):
        read_records(write(tmp_path / "empty.jsonl", ["", "  "]), strict=True)
    with pytest.raises(HAGInputError, match="no such file"):
        read_records(tmp_path / "missing.jsonl", strict=True)


# -- scoring proposals -----------------------------------------------------------------------


def test_strict_parse_rate_counts_only_complete_model_proposals() -> None:
    records = [record(i, TaskKind.MATH, temperature=0.5) for i in range(4)]
    good = records[0].proposal
    clamped = good.replace('"top_p":0.9', '"top_p":1.5')  # clamped, still the model's: parsed
    missing = json.dumps({k: v for k, v in records[0].params.items() if k != "top_k"})
    texts = [good, clamped, missing, "no idea"]
    score, cases = score_proposals(records, texts, "tuned")
    assert [c.parsed for c in cases] == [True, True, False, False]
    assert score.parsed == 2 and score.parse_rate == 0.5 and score.cases == 4
    assert cases[3].fallback_reason and cases[3].params == TASK_PRIORS[TaskKind.MATH].model_dump()
    # temperature: exact, exact, exact, prior 0.1 vs 0.5; top_p: 0, 0.1 (clamped to 1.0), 0, 0
    assert score.mae["temperature"] == pytest.approx(0.4 / 4)
    assert score.mae["top_p"] == pytest.approx(0.1 / 4)
    assert set(score.mae) == set(HYPERPARAM_KEYS)


def test_no_held_out_cases_means_no_rate() -> None:
    score, cases = score_proposals([], [], "tuned")
    assert score.parse_rate is None and score.mae == {} and cases == []


def test_planned_steps_counts_as_the_trainer_does() -> None:
    assert planned_steps(10, SFTSettings(batch_size=4, epochs=2)) == 6
    assert planned_steps(10, SFTSettings(batch_size=4, epochs=1.5)) == 5
    assert planned_steps(10, SFTSettings(max_steps=2)) == 2


# -- the command's input errors (no training packages needed) ---------------------------------


def test_cli_bad_data_file_is_exit_2_with_the_line(tmp_path: Path) -> None:
    path = write(tmp_path / "suite.jsonl", ['{"id": "c1", "task": "math", "prompt": "1+1?"}'])
    result = CliRunner().invoke(
        train, ["sft", "--data", str(path), "--base", "smollm2", "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    assert "suite.jsonl:1: not a search record" in result.output
    assert "Traceback" not in result.output


def test_cli_missing_training_packages_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hag_agent.training.sft as sft

    monkeypatch.setattr(sft, "missing_training_packages", lambda: ["torch", "trl"])
    path = write(tmp_path / "s.jsonl", [record(1).model_dump_json(), record(2).model_dump_json()])
    result = CliRunner().invoke(
        train, ["sft", "--data", str(path), "--base", "smollm2", "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    assert "torch, trl" in result.output and "pip install 'hag-agent[train]'" in result.output


def test_cli_rejects_a_held_out_share_of_one(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        train,
        ["sft", "--data", "x", "--base", "smollm2", "--out", str(tmp_path), "--held-out", "1"],
    )
    assert result.exit_code == 2 and "--held-out" in result.output


def test_report_table_shows_tuned_against_base() -> None:
    from rich.console import Console

    tuned = ProposerScore(
        cases=2, parsed=2, parse_rate=1.0, mae=dict.fromkeys(HYPERPARAM_KEYS, 0.05)
    )
    base = ProposerScore(cases=2, parsed=0, parse_rate=0.0, mae=dict.fromkeys(HYPERPARAM_KEYS, 0.4))
    report = SFTReport(
        data="s.jsonl",
        base="smollm2",
        base_folder="/m",
        adapter="/o/adapter",
        settings=SFTSettings(),
        training=TrainingSummary(examples=8, held_out=2, global_step=4, steps_run=4, seconds=2.0),
        held_out_ids=["case-1", "case-7"],
        tuned=tuned,
        base_model=base,
    )
    console = Console(width=120, record=True)
    console.print(report_table(report))
    text = console.export_text()
    assert "100% (2/2)" in text and "0% (0/2)" in text and "case-1, case-7" in text
    assert "MAE temperature" in text and "0.050" in text and "0.400" in text
