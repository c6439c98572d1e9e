"""The proposer registry and the built-in proposers, through the graph with a scripted model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hag_agent import (
    ConfigurationError,
    HAGRunnable,
    InvalidSettingsError,
    ParamSource,
    TaskKind,
    proposing,
)
from hag_agent.context import resolve_context
from hag_agent.data.jsonl_log import append_line
from hag_agent.hyperparameters import HYPERPARAM_KEYS, DecodingBounds, HyperParams
from hag_agent.proposers.random_draw import random_params
from hag_agent.proposing import (
    Proposal,
    ProposalRequest,
    ProposalSteps,
    Proposer,
    proposer_class,
    proposer_for,
    proposer_names,
    register_proposer,
)
from hag_agent.tasks import DEFAULT_PARAMS, TASK_PRIORS
from hag_agent.testing import ScriptedChatModel, search_record

PROMPT = "What is 2 + 3?"  # the rules classify it as math
GOOD = "The answer is 5."
WARM = HyperParams(
    temperature=0.77, top_p=0.91, top_k=12, min_p=0.01, repetition_penalty=1.02, max_tokens=99
)

PLUGIN = """
from hag_agent.hyperparameters import ParamSource
from hag_agent.node_driver import DecideCall
from hag_agent.proposal import ProposalSchema
from hag_agent.proposing import Proposal, Proposer
from pydantic import BaseModel, ConfigDict


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    temperature: float = 0.33


class PluginProposer(Proposer):
    name = "plugin-demo"
    settings_type = Settings

    def propose(self, request):
        result = yield DecideCall("propose", "any " + request.prompt, ProposalSchema)
        values = {"temperature": self.settings.temperature, "top_p": 0.9, "top_k": 7,
                  "min_p": 0.0, "repetition_penalty": 1.0, "max_tokens": 50}
        return Proposal.uniform(values, ParamSource.FIXED, f"plugin saw {result.raw_text!r}")
"""


def run(**settings: Any) -> tuple[Any, ScriptedChatModel]:
    model = ScriptedChatModel(script={"generate": [GOOD], "propose": ['{"x": 1}']})
    result = HAGRunnable(model=model, critique=False, **settings).invoke(PROMPT)
    return result, model


def propose_event(result: Any) -> Any:
    return next(e for e in result.trace if e.node == "propose")


@pytest.fixture
def clean_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    # Registrations are process-wide: each test's own are undone after it.
    monkeypatch.setattr(proposing.PROPOSERS, "_registered", dict(proposing.PROPOSERS._registered))


# -- the registry ----------------------------------------------------------------------------


def test_builtins_are_listed_in_report_order() -> None:
    assert proposer_names()[:10] == [
        "default", "random", "prior", "self", "self-tuned", "learned", "oracle", "fixed", "min-p",
        "fitted-prior",
    ]  # fmt: skip
    for name in proposer_names()[:10]:
        assert proposer_class(name).name == name


def test_an_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigurationError, match="unknown proposer 'magic'; valid proposers: def"):
        proposer_class("magic")
    with pytest.raises(InvalidSettingsError) as caught:
        resolve_context({"proposer": "magic"})
    assert caught.value.field == "proposer"
    names = "default, random, prior, self, self-tuned, learned, oracle, fixed, min-p, fitted-prior"
    assert names in str(caught.value)


def test_options_are_checked_by_the_proposers_settings_type() -> None:
    with pytest.raises(InvalidSettingsError) as missing:
        proposer_for(resolve_context({"proposer": "oracle"}))
    # a missing option is not "outside a bound", and its value is not the enclosing object
    assert (
        str(missing.value) == "proposer_options.oracle.search_file: required by proposer 'oracle'"
    )
    with pytest.raises(InvalidSettingsError) as extra:
        proposer_for(
            resolve_context({"proposer": "prior", "proposer_options": {"prior": {"colour": "b"}}})
        )
    assert str(extra.value) == "proposer_options.prior.colour='b': Extra inputs are not permitted"
    with pytest.raises(InvalidSettingsError, match=r"proposer_options\.learned\.colour"):
        run(proposer="learned", proposer_options={"learned": {"colour": "blue"}})


def test_options_merge_per_key_and_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HAG_PROPOSER", "oracle")
    monkeypatch.setenv(
        "HAG_PROPOSER_OPTIONS", f'{{"oracle": {{"search_file": "{tmp_path / "s.jsonl"}"}}}}'
    )
    context = resolve_context()
    assert context.proposer_options == {"oracle": {"search_file": str(tmp_path / "s.jsonl")}}
    # Only the chosen proposer's options count: oracle's do not stop a run with the prior.
    assert resolve_context({"proposer": "prior"}).proposer == "prior"
    assert proposer_for(context).settings.search_file == tmp_path / "s.jsonl"  # type: ignore[attr-defined]


class Warm(Proposer):
    """A third-party proposer: one class."""

    name = "warm"

    def propose(self, request: ProposalRequest) -> ProposalSteps:
        return Proposal.uniform(WARM.model_dump(), ParamSource.FIXED, f"warm for {request.key}")
        yield  # pragma: no cover


@pytest.mark.usefixtures("clean_registry")
def test_a_registered_proposer_runs_in_the_graph() -> None:
    register_proposer("warm", Warm)
    assert "warm" in proposer_names()
    result, model = run(proposer="warm", params={"max_tokens": 64})
    assert result.attempts[0].params == WARM.model_copy(update={"max_tokens": 64})
    assert result.attempts[0].sources["max_tokens"] is ParamSource.PINNED
    assert propose_event(result).message == f"warm for {PROMPT}"
    assert [c.purpose for c in model.calls] == ["generate"]


@pytest.mark.usefixtures("clean_registry")
def test_an_entry_point_proposer_runs_in_the_graph(install_plugin: Any) -> None:
    install_plugin(
        "hag_proposer_demo",
        PLUGIN,
        "hag_agent.proposers",
        "plugin-demo = hag_proposer_demo:PluginProposer",
    )
    assert "plugin-demo" in proposer_names()
    result, model = run(
        proposer="plugin-demo", proposer_options={"plugin-demo": {"temperature": 0.44}}
    )
    assert result.attempts[0].params.temperature == 0.44
    assert result.attempts[0].params.top_k == 7
    assert propose_event(result).message == "plugin saw '{\"x\": 1}'"
    assert [c.purpose for c in model.calls] == ["propose", "generate"]
    with pytest.raises(InvalidSettingsError, match=r"proposer_options\.plugin-demo\.colour"):
        run(proposer="plugin-demo", proposer_options={"plugin-demo": {"colour": "red"}})


def test_the_core_imports_no_plugin_and_no_numpy() -> None:
    code = (
        "import sys, hag_agent, hag_agent.nodes, hag_agent.proposing\n"
        "from hag_agent import HAGRunnable\n"
        "from hag_agent.testing import ScriptedChatModel\n"
        "m = ScriptedChatModel(script={'generate': ['ok']})\n"
        "HAGRunnable(model=m, proposer='prior', critique=False).invoke('hi')\n"
        "bad = [n for n in sys.modules if n.split('.')[0] == 'numpy'"
        " or n.startswith('hag_agent.learned_head') or n == 'hag_agent.proposers.learned']\n"
        "print(bad)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


# -- the built-ins ---------------------------------------------------------------------------


def test_default_and_fixed() -> None:
    result, model = run(proposer="default")
    assert result.attempts[0].params == DEFAULT_PARAMS
    assert set(result.attempts[0].sources.values()) == {ParamSource.FIXED}
    assert propose_event(result).message == "decoder defaults"
    result, _ = run(proposer="fixed", fixed_params=WARM)
    assert result.attempts[0].params == WARM
    result, _ = run(
        proposer="fixed", proposer_options={"fixed": {"fixed_params": WARM.model_dump()}}
    )
    assert result.attempts[0].params == WARM
    assert [c.purpose for c in model.calls] == ["generate"]


def test_prior() -> None:
    result, _ = run(proposer="prior")
    assert result.attempts[0].params == TASK_PRIORS[TaskKind.MATH]
    assert propose_event(result).message == "the math prior"


def test_random_draws_by_seed_and_key() -> None:
    result, model = run(proposer="random", seed=4)
    assert result.attempts[0].params == random_params(PROMPT, 4, TaskKind.MATH)
    assert [c.purpose for c in model.calls] == ["generate"]
    again, _ = run(proposer="random", seed=4)
    assert again.attempts[0].params == result.attempts[0].params
    other, _ = run(proposer="random", seed=5)
    assert other.attempts[0].params != result.attempts[0].params
    by_case, _ = run(proposer="random", seed=4, case_id="m1")
    assert by_case.attempts[0].params == random_params("m1", 4, TaskKind.MATH)
    unseeded, _ = run(proposer="random")
    assert unseeded.attempts[0].params == random_params(PROMPT, 0, TaskKind.MATH)


def test_random_respects_narrow_bounds() -> None:
    bounds = DecodingBounds.model_validate({"temperature": {"low": 0.1, "high": 0.2}})
    for seed in range(20):
        params = random_params("k", seed, TaskKind.CHAT, bounds)
        assert 0.1 <= params.temperature <= 0.2
        bounds.check(params.model_dump(), what="random")


def test_self_and_self_tuned_ask_the_model() -> None:
    proposal = WARM.to_proposal_json()
    for name in ("self", "self-tuned"):
        model = ScriptedChatModel(script={"generate": [GOOD], "propose": [proposal]})
        result = HAGRunnable(model=model, proposer=name, critique=False).invoke(PROMPT)
        assert result.attempts[0].params == WARM
        assert set(result.attempts[0].sources.values()) == {ParamSource.MODEL}
        assert propose_event(result).message == "proposed by the model"
        assert [c.purpose for c in model.calls] == ["propose", "generate"]


def write_search(path: Path) -> None:
    append_line(path, search_record("m1", "math", PROMPT, WARM).model_dump_json())


def test_oracle_by_case_id_or_prompt_and_falls_back(tmp_path: Path) -> None:
    search = tmp_path / "search.jsonl"
    write_search(search)
    options = {"oracle": {"search_file": str(search)}}
    by_prompt, model = run(proposer="oracle", proposer_options=options)
    assert by_prompt.attempts[0].params == WARM
    assert [c.purpose for c in model.calls] == ["generate"]
    by_id, _ = run(proposer="oracle", proposer_options=options, case_id="m1")
    assert by_id.attempts[0].params == WARM
    assert "case 'm1'" in propose_event(by_id).message
    unknown, _ = run(proposer="oracle", proposer_options=options, case_id="zz")
    assert unknown.attempts[0].params == TASK_PRIORS[TaskKind.MATH]
    event = propose_event(unknown)
    assert "no search record for case 'zz'" in event.message and event.data["fallback"] is True
    search.write_text("", encoding="utf-8")  # a rewritten file is read again
    rewritten, _ = run(proposer="oracle", proposer_options=options)
    assert "fallback to the math prior" in propose_event(rewritten).message


def test_every_builtin_proposes_every_key() -> None:
    request = ProposalRequest(prompt=PROMPT, task=TaskKind.MATH, bounds=DecodingBounds(), seed=1)
    for name in ("default", "random", "prior", "fixed", "min-p"):
        steps = proposer_class(name)().propose(request)
        with pytest.raises(StopIteration) as stop:
            next(steps)
        assert set(stop.value.value.values) == set(HYPERPARAM_KEYS)


def test_run_command_takes_any_registered_proposer(tmp_path: Path) -> None:
    import json

    from hag_agent.backends import register_backend
    from hag_agent.backends.chat_model import ChatModelBackend
    from hag_agent.cli.run_command import run as run_command

    register_backend(
        "proposers-cli", lambda options: ChatModelBackend(ScriptedChatModel(script={}))
    )
    runner = CliRunner()
    bad = runner.invoke(run_command, ["hi", "--proposer", "magic"])
    assert bad.exit_code == 2 and "unknown proposer 'magic'" in bad.output
    assert "oracle" in bad.output
    args = [PROMPT, "--backend", "proposers-cli", "--no-critique", "--json", "--seed", "2"]
    drawn = runner.invoke(run_command, [*args, "--proposer", "random"])
    assert drawn.exit_code == 0, drawn.output
    params = json.loads(drawn.stdout)["attempts"][0]["params"]
    assert params == random_params(PROMPT, 2, TaskKind.MATH).model_dump()
    search = tmp_path / "search.jsonl"
    write_search(search)
    options = json.dumps({"oracle": {"search_file": str(search)}})
    env = {"HAG_PROPOSER_OPTIONS": options}
    oracle = runner.invoke(run_command, [*args, "--proposer", "oracle"], env=env)
    assert oracle.exit_code == 0, oracle.output
    assert json.loads(oracle.stdout)["attempts"][0]["params"] == WARM.model_dump()
    no_file = runner.invoke(run_command, [*args, "--proposer", "oracle"])
    assert no_file.exit_code == 2 and "proposer_options.oracle.search_file" in no_file.output


def test_a_fixed_configuration_out_of_bounds_is_refused_from_either_source() -> None:
    bounds = {"temperature": {"low": 0.0, "high": 1.0}}
    hot = {**DEFAULT_PARAMS.model_dump(), "temperature": 1.8}
    for settings in (
        {"proposer": "fixed", "fixed_params": hot},
        {"proposer": "fixed", "proposer_options": {"fixed": {"fixed_params": hot}}},
    ):
        with pytest.raises(InvalidSettingsError, match="temperature"):
            proposer_for(resolve_context({**settings, "bounds": bounds}))


def test_min_p_is_min_p_sampling_with_the_task_priors_budget() -> None:
    for task in (TaskKind.MATH, TaskKind.CREATIVE):
        request = ProposalRequest(prompt="p", task=task, bounds=DecodingBounds())
        with pytest.raises(StopIteration) as stop:
            next(proposer_for(resolve_context({"proposer": "min-p"})).propose(request))
        proposal = stop.value.value
        assert proposal.values == {
            "temperature": 1.0,
            "top_p": 1.0,
            "top_k": 0,
            "min_p": 0.1,
            "repetition_penalty": 1.0,
            "max_tokens": TASK_PRIORS[task].max_tokens,
        }
        assert proposal.sources["min_p"] is ParamSource.FIXED
        assert proposal.sources["max_tokens"] is ParamSource.PRIOR
