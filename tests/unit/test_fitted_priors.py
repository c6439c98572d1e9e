"""The refitted task prior: fitting on search records, its file, proposer fitted-prior, the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hag_agent import HAGRunnable
from hag_agent.cli.main import cli
from hag_agent.data.fitted_priors import (
    fit_priors,
    read_fitted_priors,
    write_fitted_priors,
)
from hag_agent.data.search_records import ScoredConfig, SearchRecord
from hag_agent.errors import HAGInputError
from hag_agent.evaluation.proposers import ProposerInputs
from hag_agent.evaluation.settings import EvalSettings
from hag_agent.hyperparameters import HyperParams, ParamSource
from hag_agent.tasks import TASK_PRIORS, TaskKind
from hag_agent.testing import ScriptedChatModel, search_record
from hag_agent.training.sft_data import split_records

GREEDY = {"temperature": 0.0, "top_p": 1.0, "top_k": 0, "min_p": 0.0, "repetition_penalty": 1.0}
HOT = {"temperature": 1.0, "top_p": 0.7, "top_k": 0, "min_p": 0.0, "repetition_penalty": 1.2}
WARM = {"temperature": 0.7, "top_p": 0.9, "top_k": 40, "min_p": 0.05, "repetition_penalty": 1.1}
"""The task prior of these records: the grid holds min_p at 0, the prior has its own."""


def record(case_id: str, task: str, scores: dict[str, float], budget: int = 128) -> SearchRecord:
    """A grid record of one case: each named configuration of this module with its score."""
    configs = {"greedy": GREEDY, "hot": HOT, "warm": WARM}
    evaluated = [
        ScoredConfig(
            params={**configs[name], "max_tokens": budget},
            score=score,
            samples=4,
            stage="prior" if name == "warm" else "grid",
        )
        for name, score in scores.items()
    ]
    best = max(evaluated, key=lambda e: e.score)
    base = search_record(case_id, task, f"prompt {case_id}", HyperParams(**best.params))
    fixed = {"max_tokens": budget, "min_p": 0.0}  # what a grid's records say they held
    return base.model_copy(update={"evaluated": evaluated, "fixed": fixed})


def test_each_kind_gets_the_configuration_best_on_average_not_any_cases_best() -> None:
    records = [
        # chat: greedy is best on two cases, hot on one by far, so hot has the best mean.
        record("c1", "chat", {"greedy": 0.6, "hot": 0.5, "warm": 0.1}),
        record("c2", "chat", {"greedy": 0.6, "hot": 0.5, "warm": 0.2}),
        record("c3", "chat", {"greedy": 0.0, "hot": 0.9, "warm": 0.3}),
        record("s1", "creative", {"greedy": 0.2, "hot": 0.2, "warm": 0.4}),
    ]
    priors = fit_priors(records, source="abc")
    chat = priors.tasks[TaskKind.CHAT]
    assert chat.params.model_dump() == {**HOT, "max_tokens": 128}
    assert chat.score == pytest.approx(1.9 / 3)
    assert chat.prior_score == pytest.approx(0.2)  # the "prior"-stage entry's mean
    assert (chat.cases, chat.compared) == (3, 3)
    assert priors.tasks[TaskKind.CREATIVE].params.model_dump() == {**WARM, "max_tokens": 128}
    assert priors.case_ids == ["c1", "c2", "c3", "s1"] and priors.source == "abc"
    assert priors.scope.fixed == {"max_tokens": 128, "min_p": 0.0}


def test_only_configurations_scored_on_every_case_compete_and_ties_go_to_the_first() -> None:
    records = [
        record("c1", "chat", {"greedy": 0.5, "hot": 0.5, "warm": 1.0}),
        record("c2", "chat", {"greedy": 0.5, "hot": 0.5}),  # warm not scored here
    ]
    chat = fit_priors(records).tasks[TaskKind.CHAT]
    assert chat.params.model_dump() == {**GREEDY, "max_tokens": 128}
    assert chat.compared == 2
    assert chat.prior_score is None  # c2 has no prior entry


def test_unfittable_records_are_refused() -> None:
    with pytest.raises(HAGInputError, match="no search records"):
        fit_priors([])
    records = [record("c1", "chat", {"greedy": 0.5}), record("c2", "chat", {"hot": 0.5})]
    with pytest.raises(HAGInputError, match="2 chat records share no scored configuration"):
        fit_priors(records)


def test_the_file_round_trips_and_a_bad_one_is_a_typed_error(tmp_path: Path) -> None:
    priors = fit_priors([record("c1", "chat", {"greedy": 0.5, "hot": 0.7})])
    path = tmp_path / "sub" / "priors.json"
    write_fitted_priors(priors, path)
    assert read_fitted_priors(path) == priors
    with pytest.raises(HAGInputError, match="no such fitted-priors file"):
        read_fitted_priors(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"tasks": {"chat": 3}}', encoding="utf-8")
    with pytest.raises(HAGInputError, match=r"not a fitted-priors file .*`hag-agent train prior`"):
        read_fitted_priors(bad)
    with pytest.raises(HAGInputError, match="cannot read it"):
        read_fitted_priors(tmp_path / "sub")  # a folder


def run(prompt: str, options: dict[str, Any]) -> Any:
    model = ScriptedChatModel(script={"generate": ["An answer."]})
    runnable = HAGRunnable(
        model=model, critique=False, proposer="fitted-prior", proposer_options=options
    )
    result = runnable.invoke(prompt)
    assert [c.purpose for c in model.calls] == ["generate"]  # no proposal call
    return result, next(e for e in result.trace if e.node == "propose")


def test_the_proposer_serves_the_kinds_fit_with_the_held_budget_from_the_prior(
    tmp_path: Path,
) -> None:
    path = tmp_path / "priors.json"
    write_fitted_priors(fit_priors([record("c1", "creative", {"greedy": 0.1, "hot": 0.9})]), path)
    options = {"fitted-prior": {"priors_file": str(path)}}
    result, event = run("Write a short poem about rain.", options)
    attempt = result.attempts[0]
    budget = TASK_PRIORS[TaskKind.CREATIVE].max_tokens
    assert attempt.params.model_dump() == {**HOT, "max_tokens": budget}
    assert attempt.sources["temperature"] is ParamSource.FIXED
    assert attempt.sources["max_tokens"] is ParamSource.PRIOR
    assert "fitted for creative on 1 search cases" in event.message
    # A kind the file holds no fit for: the shipped prior, not a failure.
    result, event = run("What is 12 * 7?", options)
    assert result.attempts[0].params == TASK_PRIORS[TaskKind.MATH]
    assert "no fit for math" in event.message and not event.data.get("fallback")
    # An unreadable file: the prior, recorded as a fallback.
    # The fitted configuration is served as measured: the prior's own min_p is not replaced by
    # the value the grid's other configurations held.
    write_fitted_priors(fit_priors([record("c1", "creative", {"hot": 0.1, "warm": 0.9})]), path)
    result, _ = run("Write a short poem about rain.", options)
    assert result.attempts[0].params.model_dump() == {**WARM, "max_tokens": budget}
    path.write_text("not json", encoding="utf-8")
    result, event = run("Write a short poem about rain.", options)
    assert result.attempts[0].params == TASK_PRIORS[TaskKind.CREATIVE]
    assert event.data["fallback"] is True and "not a fitted-priors file" in event.message


def write_search(path: Path, records: list[SearchRecord]) -> None:
    path.write_text("".join(r.model_dump_json() + "\n" for r in records), encoding="utf-8")


def test_train_prior_fits_on_the_same_training_split_as_train_sft(tmp_path: Path) -> None:
    records = [
        record(f"c{i}", "chat", {"greedy": i / 20, "hot": 0.5, "warm": 0.2}) for i in range(20)
    ]
    data, out = tmp_path / "search.jsonl", tmp_path / "priors.json"
    write_search(data, records)
    result = CliRunner().invoke(
        cli, ["train", "prior", "--data", str(data), "--out", str(out), "--held-out", "0.3"]
    )
    assert result.exit_code == 0, result.output
    split = split_records(records, 0.3, 0)
    priors = read_fitted_priors(out)
    assert priors.case_ids == [r.id for r in split.train] and split.held_out
    assert priors.tasks[TaskKind.CHAT] == fit_priors(split.train).tasks[TaskKind.CHAT]
    assert f"fitted on {len(split.train)} cases ({len(split.held_out)} held out)" in result.output
    assert " chat " in result.output
    as_json = CliRunner().invoke(
        cli, ["train", "prior", "--data", str(data), "--out", str(out), "--json"]
    )
    assert json.loads(as_json.output)["tasks"]["chat"]["cases"] == len(
        split_records(records, 0.2, 0).train
    )


def test_train_prior_refuses_what_it_cannot_fit(tmp_path: Path) -> None:
    data = tmp_path / "search.jsonl"
    write_search(data, [record("c1", "chat", {"greedy": 0.5}), record("c2", "chat", {"hot": 1})])
    args = ["train", "prior", "--data", str(data), "--out", str(tmp_path / "p.json")]
    result = CliRunner().invoke(cli, [*args, "--held-out", "0"])
    assert result.exit_code == 2 and "share no scored configuration" in result.output
    assert not (tmp_path / "p.json").exists()


def test_the_evaluation_needs_the_file_and_warns_when_it_scores_fitted_cases(
    tmp_path: Path,
) -> None:
    from hag_agent.data.suites import make_suite
    from hag_agent.evaluation.harness import _check_fitted_priors

    with pytest.raises(ValueError, match=r"fitted-prior needs --priors FILE"):
        EvalSettings(proposers=["prior", "fitted-prior"])
    cases = make_suite("repeat_exact", 3, seed=0)
    path = tmp_path / "priors.json"
    fitted = [record(cases[0].id, "chat", {"greedy": 0.5})]
    write_fitted_priors(fit_priors(fitted), path)
    settings = EvalSettings(proposers=["fitted-prior"], priors_file=path)
    assert settings.options_for("fitted-prior") == {"priors_file": path}
    warnings: list[str] = []
    _check_fitted_priors(cases, settings, warnings.append)
    assert warnings and "fitted on 1 of these 3 cases" in warnings[0]
    warnings.clear()
    _check_fitted_priors(cases[1:], settings, warnings.append)
    assert warnings == []
    # A row of fitted-prior is redone when the file's content changes, as for a head file.
    before = ProposerInputs(settings, {})("fitted-prior", cases[1].id)
    write_fitted_priors(fit_priors([record(cases[0].id, "chat", {"hot": 0.5})]), path)
    assert ProposerInputs(settings, {})("fitted-prior", cases[1].id) != before
    missing = EvalSettings(proposers=["fitted-prior"], priors_file=tmp_path / "none.json")
    with pytest.raises(HAGInputError, match="no such fitted-priors file"):
        _check_fitted_priors(cases, missing, warnings.append)
