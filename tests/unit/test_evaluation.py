"""The evaluation harness on a tiny suite with a scripted fake model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage
from pydantic import ValidationError

from hag_agent.backends.chat_model import ChatModelBackend
from hag_agent.data.jsonl_log import append_line
from hag_agent.data.suites import SuiteCase
from hag_agent.errors import HAGInputError
from hag_agent.evaluation import (
    EvalSettings,
    ReportLabels,
    evaluate,
    read_rows,
    write_reports,
)
from hag_agent.hyperparameters import DecodingBounds, HyperParams
from hag_agent.proposers.oracle import oracle_params
from hag_agent.proposers.random_draw import random_params
from hag_agent.proposing import proposer_names
from hag_agent.tasks import TASK_PRIORS, TaskKind
from hag_agent.testing import Reply, ScriptedChatModel, search_record

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def tiny_suite() -> list[SuiteCase]:
    return [
        SuiteCase(id="m1", task=TaskKind.MATH, prompt="What is 2 + 3?", answer="5"),
        SuiteCase(id="m2", task=TaskKind.MATH, prompt="What is 4 + 4?", answer="8"),
        SuiteCase(
            id="c1",
            task=TaskKind.REASONING,
            prompt="A coin is heads up. Ann flips the coin. Is it still heads up?",
            answer="no",
        ),
    ]


ANSWERS = {"What is 2 + 3?": "5", "What is 4 + 4?": "8", "A coin is heads up.": "no"}


def answer_when_cold(messages: list[BaseMessage], kwargs: dict[str, Any]) -> str:
    """Right at temperature below 0.5, wrong above: proposers must differ in the metric."""
    prompt = str(messages[-1].content)
    right = next(v for k, v in ANSWERS.items() if prompt.startswith(k))
    if kwargs["temperature"] < 0.5:
        return f"The answer is {right}."
    return "The answer is 99." if right.isdigit() else "The answer is yes."


def fake_model(**script: Any) -> ScriptedChatModel:
    return ScriptedChatModel(
        script={
            "propose": [
                '{"temperature":0.2,"top_p":0.9,"top_k":20,"min_p":0.0,'
                '"repetition_penalty":1.0,"max_tokens":64}'
            ],
            "generate": [answer_when_cold],
            **script,
        }
    )


def test_harness_writes_json_markdown_and_png(tmp_path: Path) -> None:
    model = fake_model()
    settings = EvalSettings(proposers=["default", "random", "prior", "self"], seeds=2)
    report = evaluate(
        tiny_suite(),
        ChatModelBackend(model),
        tmp_path,
        settings,
        labels=ReportLabels(suite="tiny", command="hag-agent eval x"),
    )
    files = write_reports(report, tmp_path)
    assert [f.name for f in files] == ["report.json", "report.md", "chart.png"]
    data = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert data["cases"] == 3 and data["rows"] == 3 * 4 * 2
    assert data["tasks"] == ["math", "reasoning"]
    markdown = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "`hag-agent eval x`" in markdown and "## Overall" in markdown
    assert "## math (metric: number)" in markdown and "## reasoning (metric: yes_no)" in markdown
    assert "seeds: 0, 1" in markdown and "| prior | 1.000 ± 0.000 |" in markdown
    # Every case is lost by the hot default and tied by self, against the prior.
    assert "### Against prior" in markdown and "### Against default" in markdown
    assert "| overall | default | -1.000 [-1.000, -1.000] | worse | 0 / 0 / 3 |" in markdown
    assert (
        "| overall | self | +0.000 [+0.000, +0.000] | no measurable difference | 0 / 3 / 0 |"
        in (markdown)
    )
    assert "| math | self | +1.000 [+1.000, +1.000] | better | 2 / 0 / 0 |" in markdown
    assert "| reasoning | self | +1.000 | too few cases | 1 / 0 / 0 |" in markdown
    assert len(data["comparisons"]) == 2 * 3 * 3  # baselines x (overall + 2 tasks) x others
    png = (tmp_path / "chart.png").read_bytes()
    assert png.startswith(PNG_SIGNATURE)
    import matplotlib.image

    image = matplotlib.image.imread(tmp_path / "chart.png")
    assert image.shape[0] > 100 and image.shape[1] > 100
    # The metric really differs by proposer: prior and self are cold, default is hot.
    assert report.aggregate("overall", "prior").mean == 1.0  # type: ignore[union-attr]
    assert report.aggregate("overall", "self").mean == 1.0  # type: ignore[union-attr]
    assert report.aggregate("overall", "default").mean == 0.0  # type: ignore[union-attr]
    assert len(model.calls_for("generate")) == 24  # one attempt per run: critique is off
    assert not model.calls_for("classify")  # the task is pinned to the case's


def test_rows_record_metric_time_tokens_and_params(tmp_path: Path) -> None:
    evaluate(
        tiny_suite()[:1],
        ChatModelBackend(fake_model()),
        tmp_path,
        EvalSettings(proposers=["prior"]),
    )
    (row,) = read_rows(tmp_path / "rows.jsonl")
    assert row.metric == 1.0 and row.tokens == 4 and row.time_s > 0 and row.attempts == 1
    assert row.params is not None and row.params["temperature"] == 0.1  # the math prior
    assert row.output == "The answer is 5."


def test_max_tokens_pin_applies_to_every_proposer(tmp_path: Path) -> None:
    model = fake_model()
    settings = EvalSettings(proposers=["default", "random", "prior", "self"], max_tokens=24)
    evaluate(tiny_suite()[:1], ChatModelBackend(model), tmp_path, settings)
    assert {c.kwargs["max_tokens"] for c in model.calls_for("generate")} == {24}


def test_random_proposer_is_reproducible_by_seed() -> None:
    case = tiny_suite()[0]
    one, two = random_params(case.id, 3, case.task), random_params(case.id, 3, case.task)
    assert one == two
    assert random_params(case.id, 4, case.task) != one
    assert random_params(tiny_suite()[1].id, 3, case.task) != one
    bounds = DecodingBounds()
    for seed in range(50):
        params = random_params(case.id, seed, case.task)
        bounds.check(params.model_dump(), what="random")  # never outside the policy


def test_random_rows_use_the_seeded_configuration(tmp_path: Path) -> None:
    model = fake_model()
    evaluate(
        tiny_suite(), ChatModelBackend(model), tmp_path, EvalSettings(proposers=["random"], seeds=2)
    )
    rows = read_rows(tmp_path / "rows.jsonl")
    assert len(rows) == 6
    for row in rows:
        case = next(c for c in tiny_suite() if c.id == row.case_id)
        assert row.params == random_params(case.id, row.seed, case.task).model_dump()


def write_search_file(path: Path, cases: list[SuiteCase], temperature: float) -> None:
    for case in cases:
        params = HyperParams(
            temperature=temperature,
            top_p=0.85,
            top_k=10,
            min_p=0.0,
            repetition_penalty=1.05,
            max_tokens=32,
        )
        record = search_record(case.id, case.task.value, case.prompt, params)
        append_line(path, record.model_dump_json())


def test_oracle_uses_the_search_files_params(tmp_path: Path) -> None:
    cases = tiny_suite()
    search = tmp_path / "search.jsonl"
    write_search_file(search, cases, temperature=0.37)
    assert oracle_params(search, cases)["m1"].temperature == 0.37
    model = fake_model()
    settings = EvalSettings(proposers=["oracle"], search_file=search)
    evaluate(cases, ChatModelBackend(model), tmp_path / "out", settings)
    calls = model.calls_for("generate")
    assert len(calls) == 3
    assert {
        (c.kwargs["temperature"], c.kwargs["top_k"], c.kwargs["max_tokens"]) for c in calls
    } == {(0.37, 10, 32)}
    assert all(r.metric == 1.0 for r in read_rows(tmp_path / "out" / "rows.jsonl"))


def test_oracle_lists_the_missing_ids(tmp_path: Path) -> None:
    cases = tiny_suite()
    search = tmp_path / "search.jsonl"
    write_search_file(search, cases[:1], temperature=0.3)
    with pytest.raises(HAGInputError, match=r"no record for 2 of 3 case\(s\): m2, c1"):
        oracle_params(search, cases)
    with pytest.raises(HAGInputError, match="no such search file"):
        oracle_params(tmp_path / "nope.jsonl", cases)
    model = fake_model()
    with pytest.raises(HAGInputError, match=r"no record for 2 of 3 case\(s\): m2, c1"):
        evaluate(
            cases,
            ChatModelBackend(model),
            tmp_path,
            EvalSettings(proposers=["oracle"], search_file=search),
        )
    assert not model.calls  # checked before any run
    with pytest.raises(ValidationError, match="oracle needs --search FILE"):
        EvalSettings(proposers=["oracle"])


def test_unknown_proposer_is_a_clear_error() -> None:
    with pytest.raises(ValidationError) as caught:
        EvalSettings(proposers=["default", "hag", "prior"])
    message = str(caught.value)
    assert (
        "'hag'" in message
        and "default, random, prior, self, self-tuned, learned, oracle" in message
    )
    assert EvalSettings(proposers=["self", "prior", "self"]).proposers == ["self", "prior"]
    with pytest.raises(ValidationError, match="no proposer"):
        EvalSettings(proposers=[])
    assert proposer_names()[:7] == [
        "default", "random", "prior", "self", "self-tuned", "learned", "oracle"
    ]  # fmt: skip


def test_resume_skips_finished_rows_and_a_failure_loses_nothing(tmp_path: Path) -> None:
    from hag_agent.errors import BackendError

    def flaky(messages: list[BaseMessage], kwargs: dict[str, Any]) -> str | Reply:
        if "4 + 4" in str(messages[-1].content):
            return Reply(text="", error=BackendError("connection reset"))
        return answer_when_cold(messages, kwargs)

    settings = EvalSettings(proposers=["default", "prior"])
    first = evaluate(
        tiny_suite(), ChatModelBackend(fake_model(generate=[flaky])), tmp_path, settings
    )
    assert {(f.case_id, f.proposer) for f in first.failures} == {("m2", "default"), ("m2", "prior")}
    assert first.rows == 4
    assert len(read_rows(tmp_path / "rows.jsonl")) == 4
    model = fake_model()
    second = evaluate(tiny_suite(), ChatModelBackend(model), tmp_path, settings)
    assert len(model.calls_for("generate")) == 2  # only the two failed runs
    assert second.rows == 6 and second.reused_rows == 4 and not second.failures


def test_rows_of_another_setup_are_not_reused(tmp_path: Path) -> None:
    evaluate(
        tiny_suite()[:1],
        ChatModelBackend(fake_model()),
        tmp_path,
        EvalSettings(proposers=["prior"]),
    )
    model = fake_model()
    report = evaluate(
        tiny_suite()[:1],
        ChatModelBackend(model),
        tmp_path,
        EvalSettings(proposers=["prior"], max_tokens=8),
    )
    assert report.reused_rows == 0 and len(model.calls_for("generate")) == 1
    assert len(read_rows(tmp_path / "rows.jsonl")) == 2


def test_oracle_rows_are_redone_for_another_search_and_the_rest_reused(tmp_path: Path) -> None:
    cases = tiny_suite()
    search = tmp_path / "search.jsonl"
    write_search_file(search, cases, temperature=0.37)
    settings = EvalSettings(proposers=["prior", "oracle"], search_file=search)
    out = tmp_path / "out"
    evaluate(cases, ChatModelBackend(fake_model()), out, settings)
    model = fake_model()
    again = evaluate(cases, ChatModelBackend(model), out, settings)
    assert again.reused_rows == 6 and not model.calls_for("generate")

    search.unlink()
    write_search_file(search, cases, temperature=0.81)  # a new search: new oracle settings
    model = fake_model()
    report = evaluate(cases, ChatModelBackend(model), out, settings)
    assert report.reused_rows == 3  # the prior rows
    assert {c.kwargs["temperature"] for c in model.calls_for("generate")} == {0.81}


def test_rows_are_redone_when_a_proposers_options_change(tmp_path: Path) -> None:
    cases, out = tiny_suite(), tmp_path / "out"

    def fixed_at(temperature: float) -> EvalSettings:
        params = {**TASK_PRIORS[TaskKind.MATH].model_dump(), "temperature": temperature}
        return EvalSettings(
            proposers=["fixed"], proposer_options={"fixed": {"fixed_params": params}}
        )

    evaluate(cases, ChatModelBackend(fake_model()), out, fixed_at(0.1))
    model = fake_model()
    report = evaluate(cases, ChatModelBackend(model), out, fixed_at(1.5))
    assert report.reused_rows == 0
    assert {c.kwargs["temperature"] for c in model.calls_for("generate")} == {1.5}
    again = evaluate(cases, ChatModelBackend(fake_model()), out, fixed_at(1.5))
    assert again.reused_rows == 3


def test_learned_and_tuned_rows_key_on_their_files_content(tmp_path: Path) -> None:
    from hag_agent.evaluation.rows import file_digest, row_setup

    assert file_digest(None) == "" and file_digest("served-name") == "served-name"
    assert row_setup("abc", "") == "abc" and row_setup("abc", "x") != row_setup("abc", "y")
    head = tmp_path / "head.npz"
    head.write_bytes(b"one")
    first = file_digest(str(head))
    head.write_bytes(b"two")
    assert file_digest(str(head)) not in ("", first)


def test_stop_on_error_stops_taking_runs(tmp_path: Path) -> None:
    from hag_agent.errors import BackendError

    model = fake_model(generate=[Reply(text="", error=BackendError("down"))])
    report = evaluate(
        tiny_suite(),
        ChatModelBackend(model),
        tmp_path,
        EvalSettings(proposers=["prior"], stop_on_error=True),
    )
    assert len(report.failures) == 1 and report.rows == 0


def test_failed_runs_and_bad_rows_are_reported_as_notes(tmp_path: Path) -> None:
    from hag_agent.errors import BackendError
    from hag_agent.progress import ProgressEvent

    (tmp_path / "rows.jsonl").write_text("{not a row}\n", encoding="utf-8")
    events: list[ProgressEvent] = []
    model = fake_model(generate=[Reply(text="", error=BackendError("down"))])
    evaluate(
        tiny_suite()[:1],
        ChatModelBackend(model),
        tmp_path,
        EvalSettings(proposers=["prior"]),
        progress=events.append,
    )
    notes = [e.message for e in events if e.kind == "note"]
    assert any("rows.jsonl:1" in n for n in notes)
    assert any(n.startswith("m1 / prior / seed 0:") and "down" in n for n in notes)
    assert [e.kind for e in events if e.kind != "note"] == ["start", "advance", "end"]


def test_a_partial_last_row_is_dropped(tmp_path: Path) -> None:
    settings = EvalSettings(proposers=["prior"])
    evaluate(tiny_suite()[:2], ChatModelBackend(fake_model()), tmp_path, settings)
    rows_path = tmp_path / "rows.jsonl"
    with rows_path.open("a", encoding="utf-8") as handle:
        handle.write('{"case_id": "c1", "ta')
    model = fake_model()
    report = evaluate(tiny_suite(), ChatModelBackend(model), tmp_path, settings)
    assert report.rows == 3 and len(model.calls_for("generate")) == 1
    assert all(json.loads(line) for line in rows_path.read_text(encoding="utf-8").splitlines())


def test_critique_option_allows_retries(tmp_path: Path) -> None:
    # An empty first answer fails the critique; the retry answers.
    script = {"generate": [Reply(text=""), answer_when_cold]}
    model = fake_model(**script)
    settings = EvalSettings(proposers=["prior"], critique=True, max_retries=1)
    evaluate(tiny_suite()[:1], ChatModelBackend(model), tmp_path / "on", settings)
    assert len(model.calls_for("generate")) == 2
    assert [r.attempts for r in read_rows(tmp_path / "on" / "rows.jsonl")] == [2]
    model = fake_model(**script)
    settings = EvalSettings(proposers=["prior"], critique=False)
    evaluate(tiny_suite()[:1], ChatModelBackend(model), tmp_path / "off", settings)
    assert len(model.calls_for("generate")) == 1


def test_missing_matplotlib_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import builtins

    from hag_agent.errors import ConfigurationError

    real_import = builtins.__import__

    def no_matplotlib(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    report = evaluate(
        tiny_suite()[:1],
        ChatModelBackend(fake_model()),
        tmp_path,
        EvalSettings(proposers=["prior"]),
    )
    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(ConfigurationError, match=r"pip install 'hag-agent\[eval\]'"):
        write_reports(report, tmp_path)
    assert (tmp_path / "report.json").exists() and (tmp_path / "report.md").exists()
    assert write_reports(report, tmp_path, chart=False)[-1].name == "report.md"


def test_self_tuned_uses_the_tuned_backend_and_base_self_does_not(tmp_path: Path) -> None:
    base = fake_model(
        propose=[
            '{"temperature":0.9,"top_p":0.9,"top_k":20,"min_p":0.0,'
            '"repetition_penalty":1.0,"max_tokens":64}'
        ]
    )
    tuned = fake_model()  # proposes temperature 0.2: right answers under answer_when_cold
    settings = EvalSettings(proposers=["self", "self-tuned"], tuned_proposer="adapter.gguf")
    report = evaluate(
        tiny_suite(),
        ChatModelBackend(base),
        tmp_path,
        settings,
        tuned_model=ChatModelBackend(tuned),
    )
    rows = read_rows(tmp_path / "rows.jsonl")
    by = {(r.case_id, r.proposer): r for r in rows}
    assert all(by[c.id, "self"].params["temperature"] == 0.9 for c in tiny_suite())
    assert all(by[c.id, "self-tuned"].params["temperature"] == 0.2 for c in tiny_suite())
    assert report.aggregate("overall", "self-tuned").mean == 1.0
    assert report.aggregate("overall", "self").mean == 0.0
    with pytest.raises(HAGInputError, match="--tuned-proposer"):
        evaluate(tiny_suite(), ChatModelBackend(base), tmp_path / "x", settings)
    with pytest.raises(ValidationError, match="self-tuned needs the tuned proposer"):
        EvalSettings(proposers=["self-tuned"])


def test_learned_needs_a_head_and_cases_can_be_restricted(tmp_path: Path) -> None:
    from hag_agent.backends.embedded import EmbeddedOptions
    from hag_agent.evaluation import case_ids_from, run_settings

    case = tiny_suite()[0]
    settings = EvalSettings(proposers=["learned", "random"], head_path="h.npz")
    assert run_settings("learned", case, settings) == {
        "proposer": "learned",
        "proposer_options": {"learned": {"head_path": "h.npz"}},
        "case_id": "m1",
    }
    assert run_settings("random", case, settings)["proposer_options"] == {"random": {}}
    with pytest.raises(ValidationError, match="learned needs a head file"):
        EvalSettings(proposers=["prior", "learned"])  # before any run, not per row
    # --tuned-proposer is passed as proposer_model: an adapter file on the embedded backend.
    assert EmbeddedOptions(proposer_model="a.gguf").proposer_lora_path == Path("a.gguf")
    held = tmp_path / "held_out.jsonl"
    held.write_text('{"id": "m1", "x": 1}\n\n{"id": "c1"}\n{"id": "m1"}\n', encoding="utf-8")
    assert case_ids_from(held) == {"m1", "c1"}
    (tmp_path / "empty.jsonl").write_text('{"x": 1}\n', encoding="utf-8")
    with pytest.raises(HAGInputError, match="names no case id"):
        case_ids_from(tmp_path / "empty.jsonl")
    (tmp_path / "bad.jsonl").write_text("{nope\n", encoding="utf-8")
    with pytest.raises(HAGInputError, match=r"bad\.jsonl:1: not JSON"):
        case_ids_from(tmp_path / "bad.jsonl")
