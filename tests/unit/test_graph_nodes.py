"""Every node, fallback and routing rule, through the compiled graph with a scripted model."""

from typing import Any

import pytest

from hag_agent import (
    BackendError,
    HAGContext,
    HAGInputError,
    HAGRunnable,
    InvalidSettingsError,
    ParamSource,
    TaskKind,
    graph,
)
from hag_agent.hyperparameters import HYPERPARAM_KEYS, HyperParams
from hag_agent.tasks import DEFAULT_PARAMS, TASK_PRIORS
from hag_agent.testing import Reply, ScriptedChatModel

PROPOSAL = (
    '{"temperature": 0.4, "top_p": 0.85, "top_k": 30, "min_p": 0.02, '
    '"repetition_penalty": 1.05, "max_tokens": 300}'
)
GOOD = "Paris is the capital of France, on the Seine."
REPETITIVE = "the the the the the the the the the the the the the the the the"


def run(
    script: dict[str, list[Any]], prompt: str = "What is the capital of France?", **settings: Any
):  # type: ignore[no-untyped-def]
    model = ScriptedChatModel(script=script)
    settings.setdefault("proposer", "self")  # these tests script the model's own proposal
    result = HAGRunnable(model=model, **settings).invoke(prompt)
    return result, model


# -- classify --------------------------------------------------------------------------------


def test_rules_classifier_makes_no_model_call() -> None:
    result, model = run({"propose": [PROPOSAL], "generate": [GOOD]})
    assert result.task is TaskKind.FACTUAL
    assert model.calls_for("classify") == []
    assert result.trace[0].node == "classify" and "rules" in result.trace[0].message


def test_llm_classifier_uses_structured_answer() -> None:
    result, model = run(
        {"classify": ['{"task": "creative", "confidence": 0.9}'], "generate": [GOOD]},
        classifier="llm",
        proposer="prior",
    )
    assert result.task is TaskKind.CREATIVE
    assert len(model.calls_for("classify")) == 1
    assert "llm: creative" in result.trace[0].message


@pytest.mark.parametrize(
    "answer", ['{"task": "poetry"}', "it is creative", '{"task": "math", "confidence": 7}']
)
def test_llm_classifier_falls_back_to_rules(answer: str) -> None:
    result, _ = run({"classify": [answer], "generate": [GOOD]}, classifier="llm", proposer="prior")
    assert result.task is TaskKind.FACTUAL
    assert "fallback rules" in result.trace[0].message
    assert result.trace[0].data["fallback"] is True


def test_classifier_backend_failure_falls_back_to_rules() -> None:
    result, _ = run(
        {"classify": [Reply("", error=RuntimeError("boom"))], "generate": [GOOD]},
        classifier="llm",
        proposer="prior",
    )
    assert result.task is TaskKind.FACTUAL and "boom" in result.trace[0].message


def test_pinned_task_skips_classification() -> None:
    result, model = run({"generate": [GOOD]}, task="creative", classifier="llm", proposer="prior")
    assert result.task is TaskKind.CREATIVE
    assert model.calls_for("classify") == []
    assert result.trace[0].message == "pinned by the caller"


# -- propose ---------------------------------------------------------------------------------


def test_self_proposal_reaches_the_generation_call() -> None:
    result, model = run({"propose": [PROPOSAL], "generate": [GOOD]})
    attempt = result.attempts[0]
    assert attempt.params.temperature == 0.4 and attempt.params.max_tokens == 300
    assert set(attempt.sources.values()) == {ParamSource.MODEL}
    sent = model.calls_for("generate")[0].kwargs
    assert {k: sent[k] for k in HYPERPARAM_KEYS} == attempt.params.model_dump()
    proposal_call = model.calls_for("propose")[0]
    assert "What is the capital of France?" in proposal_call.messages[-1].text
    assert proposal_call.kwargs["temperature"] == 0.0  # decisions are greedy


@pytest.mark.parametrize("bad", ["no idea", "", '{"temperature": "hot"', "[]"])
def test_unparseable_proposal_falls_back_to_prior(bad: str) -> None:
    result, _ = run({"propose": [bad], "generate": [GOOD]})
    attempt = result.attempts[0]
    assert attempt.params == TASK_PRIORS[TaskKind.FACTUAL]
    assert set(attempt.sources.values()) <= {ParamSource.PRIOR, ParamSource.MODEL}
    assert "prior" in attempt.reason


def test_proposal_backend_failure_falls_back_to_prior() -> None:
    result, _ = run({"propose": [Reply("", error=ConnectionError("refused"))], "generate": [GOOD]})
    assert result.attempts[0].params == TASK_PRIORS[TaskKind.FACTUAL]
    assert "proposal call failed" in result.attempts[0].reason


def test_out_of_range_proposal_is_clamped_and_traced() -> None:
    proposal = '{"temperature": 50, "top_p": 0.9, "top_k": 40, "min_p": 0, "repetition_penalty": 1.1, "max_tokens": 1000000}'
    result, model = run({"propose": [proposal], "generate": [GOOD]})
    params = result.attempts[0].params
    assert (params.temperature, params.top_p, params.max_tokens) == (2.0, 0.9, 2048)
    assert {c.key for c in result.attempts[0].clamps} == {"temperature", "max_tokens"}
    assert set(result.attempts[0].sources.values()) == {ParamSource.MODEL}
    propose_event = next(e for e in result.trace if e.node == "propose")
    assert len(propose_event.data["clamps"]) == 2
    assert model.calls_for("generate")[0].kwargs["max_tokens"] == 2048


def test_implausible_proposal_falls_back_to_prior() -> None:
    """What the untuned 135M model really answers: every value the same, most out of range."""
    proposal = '{"temperature": 23, "top_p": 23, "top_k": 23, "min_p": 23, "repetition_penalty": 23, "max_tokens": 23}'
    result, _ = run({"propose": [proposal], "generate": [GOOD]})
    attempt = result.attempts[0]
    assert attempt.params == TASK_PRIORS[TaskKind.FACTUAL]
    assert "implausible proposal: 4 values out of range" in attempt.reason
    assert set(attempt.sources.values()) == {ParamSource.PRIOR}


def test_prompt_asking_for_extreme_settings_stays_in_bounds() -> None:
    """A model that obeys the user's "temperature 50, max_tokens 1000000" is still bounded."""

    def obedient(messages: list[Any], kwargs: dict[str, Any]) -> str:
        assert "temperature 50" in messages[-1].text
        return '{"temperature": 50, "max_tokens": 1000000}'

    result, model = run(
        {"propose": [obedient], "generate": [GOOD]},
        prompt="Use temperature 50, max_tokens 1000000 and tell me a joke.",
    )
    sent = model.calls_for("generate")[0].kwargs
    assert sent["temperature"] == 2.0 and sent["max_tokens"] == 2048
    assert result.attempts[0].sources["top_p"] is ParamSource.PRIOR


def test_prior_and_fixed_proposers_make_no_proposal_call() -> None:
    result, model = run({"generate": [GOOD]}, proposer="prior")
    assert result.attempts[0].params == TASK_PRIORS[TaskKind.FACTUAL]
    assert model.calls_for("propose") == []
    result, model = run({"generate": [GOOD]}, proposer="fixed")
    assert result.attempts[0].params == DEFAULT_PARAMS
    assert set(result.attempts[0].sources.values()) == {ParamSource.FIXED}
    fixed = HyperParams(
        temperature=0.5, top_p=0.5, top_k=5, min_p=0.0, repetition_penalty=1.0, max_tokens=50
    )
    result, _ = run({"generate": [GOOD]}, proposer="fixed", fixed_params=fixed)
    assert result.attempts[0].params == fixed


def test_pinned_params_override_per_key() -> None:
    result, model = run({"propose": [PROPOSAL], "generate": [GOOD]}, params={"max_tokens": 64})
    attempt = result.attempts[0]
    assert attempt.params.max_tokens == 64 and attempt.params.temperature == 0.4
    assert attempt.sources["max_tokens"] is ParamSource.PINNED
    assert attempt.sources["temperature"] is ParamSource.MODEL
    assert model.calls_for("generate")[0].kwargs["max_tokens"] == 64


def test_pinned_params_out_of_bounds_raise_before_any_model_call() -> None:
    model = ScriptedChatModel()
    with pytest.raises(InvalidSettingsError) as info:
        HAGRunnable(model=model).invoke({"prompt": "hi", "params": {"temperature": 5}})
    assert info.value.field == "temperature" and info.value.bound == "[0, 2]"
    assert model.calls == []


# -- generate --------------------------------------------------------------------------------


def test_generation_records_usage_finish_and_logprobs() -> None:
    result, _ = run({"propose": [PROPOSAL], "generate": [Reply(GOOD, logprobs=[-0.5, -1.5])]})
    attempt = result.attempts[0]
    assert attempt.output == GOOD and attempt.finish_reason == "stop"
    assert attempt.prompt_tokens == 10 and attempt.completion_tokens == len(GOOD.split())
    assert attempt.mean_logprob == pytest.approx(-1.0)
    assert attempt.latency_s >= 0


def test_seed_reaches_every_generation_call() -> None:
    _, model = run({"propose": [PROPOSAL], "generate": [GOOD]}, seed=7)
    assert model.calls_for("generate")[0].kwargs["seed"] == 7


def test_first_generation_failure_raises_typed_error() -> None:
    model = ScriptedChatModel(script={"generate": [Reply("", error=TimeoutError("slow"))]})
    with pytest.raises(BackendError, match="slow"):
        HAGRunnable(model=model, proposer="prior").invoke("hello")


def test_later_generation_failure_keeps_earlier_attempts() -> None:
    result, _ = run(
        {"generate": [REPETITIVE, Reply("", error=ConnectionResetError("reset"))]},
        proposer="prior",
        prompt="hello there",
    )
    assert len(result.attempts) == 2
    assert result.attempts[1].error and "reset" in result.attempts[1].error
    assert result.best_attempt == 0 and result.text == REPETITIVE
    assert result.stop_reason == "backend failed on attempt 1"


# -- critique, adjust, routing -------------------------------------------------------------


def test_accepted_first_attempt_ends_the_run() -> None:
    result, _ = run({"propose": [PROPOSAL], "generate": [GOOD]})
    assert len(result.attempts) == 1 and result.stop_reason.startswith("accepted")
    assert result.attempts[0].critique is not None and result.attempts[0].critique.score == 1.0


def test_retry_adjusts_params_and_keeps_every_attempt() -> None:
    result, model = run({"propose": [PROPOSAL], "generate": [REPETITIVE, GOOD]})
    first, second = result.attempts
    assert first.critique is not None and first.critique.verdict == "retry"
    assert second.params.repetition_penalty > first.params.repetition_penalty
    assert second.params.temperature < first.params.temperature
    assert second.sources["repetition_penalty"] is ParamSource.RETRY
    assert second.sources["top_k"] is ParamSource.MODEL
    assert "less_repetition" in second.reason
    assert result.best_attempt == 1 and result.text == GOOD
    sent = [c.kwargs["repetition_penalty"] for c in model.calls_for("generate")]
    assert sent == [1.05, 1.2]


def test_cut_off_output_gets_more_tokens() -> None:
    result, _ = run(
        {"propose": [PROPOSAL], "generate": [Reply("Paris is", finish_reason="length"), GOOD]}
    )
    assert [a.params.max_tokens for a in result.attempts] == [300, 600]


@pytest.mark.parametrize("retries", [0, 1, 3])
def test_retry_bound(retries: int) -> None:
    result, model = run({"propose": [PROPOSAL], "generate": [REPETITIVE]}, max_retries=retries)
    assert len(result.attempts) == retries + 1
    assert len(model.calls_for("generate")) == retries + 1
    assert result.stop_reason == f"retries exhausted ({retries})"
    keys = [a.params.key() for a in result.attempts]
    assert len(set(keys)) == len(keys)  # never the same configuration twice


def test_best_attempt_not_the_last() -> None:
    medium = Reply("Paris is the capital, I think, of", finish_reason="length")  # 0.6
    result, _ = run({"propose": [PROPOSAL], "generate": [medium, REPETITIVE]}, max_retries=1)
    scores = [a.critique.score for a in result.attempts if a.critique]
    assert scores[0] > scores[1]
    assert result.best_attempt == 0 and result.text == medium.text


def test_ties_go_to_the_later_attempt() -> None:
    result, _ = run(
        {"propose": [PROPOSAL], "generate": [REPETITIVE, REPETITIVE + " the"]}, max_retries=1
    )
    assert result.attempts[0].critique.score == result.attempts[1].critique.score  # type: ignore[union-attr]
    assert result.best_attempt == 1


def test_critique_off_accepts_the_first_attempt() -> None:
    result, _ = run({"propose": [PROPOSAL], "generate": [REPETITIVE]}, critique=False)
    assert len(result.attempts) == 1 and result.attempts[0].critique is None
    assert result.stop_reason.startswith("critique off")


def test_judge_lowers_the_score_and_directs_the_retry() -> None:
    result, model = run(
        {
            "propose": [PROPOSAL],
            "generate": [GOOD, "Paris."],
            "judge": [
                '{"score": 2, "issues": ["bland"], "direction": "more_varied"}',
                '{"score": 9}',
            ],
        },
        critic="judge",
    )
    first = result.attempts[0]
    assert first.critique is not None and first.critique.source == "signals+judge"
    assert first.critique.score == pytest.approx(1 / 9, abs=1e-3)
    assert result.attempts[1].params.temperature > first.params.temperature
    assert len(model.calls_for("judge")) == 2 and result.best_attempt == 1


def test_judge_nonsense_falls_back_to_signals() -> None:
    result, _ = run(
        {"propose": [PROPOSAL], "generate": [GOOD], "judge": ["great answer!"]}, critic="judge"
    )
    critique = result.attempts[0].critique
    assert critique is not None and critique.verdict == "accept"
    assert critique.source.startswith("signals (judge fallback")


def test_exhausted_adjustment_stops_the_loop() -> None:
    every = {k: TASK_PRIORS[TaskKind.FACTUAL].model_dump()[k] for k in HYPERPARAM_KEYS}
    result, _model = run({"generate": [REPETITIVE]}, proposer="prior", params=every, max_retries=5)
    assert len(result.attempts) == 1
    assert result.stop_reason.startswith("nothing new to try")
    assert set(result.attempts[0].sources.values()) == {ParamSource.PINNED}


# -- the graph itself --------------------------------------------------------------------------


def test_graph_runs_with_context_schema() -> None:
    model = ScriptedChatModel(script={"generate": [GOOD]})
    output = graph.invoke(
        {"messages": [("user", "What is the capital of France?")]},
        context=HAGContext(chat_model=model, proposer="prior"),
    )
    assert output["answer"] == GOOD
    assert output["messages"][-1].content == GOOD
    assert set(output) == {
        "messages",
        "answer",
        "task",
        "attempts",
        "best_attempt",
        "stop_reason",
        "trace",
    }


def test_graph_rejects_empty_prompt() -> None:
    with pytest.raises(HAGInputError):
        graph.invoke(
            {"messages": [("user", "   ")]}, context=HAGContext(chat_model=ScriptedChatModel())
        )


def test_prompt_too_long_is_rejected_before_any_call() -> None:
    model = ScriptedChatModel()
    with pytest.raises(HAGInputError, match="max_prompt_chars"):
        HAGRunnable(model=model, max_prompt_chars=100).invoke("x" * 101)
    assert model.calls == []


def test_empty_output_is_retried_with_more_variety() -> None:
    result, _ = run({"propose": [PROPOSAL], "generate": ["", GOOD]})
    first, second = result.attempts
    assert first.critique is not None and first.critique.issues == ["empty output"]
    assert second.params.temperature > first.params.temperature
    assert result.text == GOOD and result.best_attempt == 1


def test_a_run_naming_no_proposer_gets_the_backends_default() -> None:
    result, model = run({"generate": [GOOD]}, proposer=None)
    assert model.calls_for("propose") == []  # a chat model's default is the task prior
    event = next(e for e in result.trace if e.node == "propose")
    assert event.data["proposer"] == "prior"
    assert "task prior costs no model call" in event.data["default_because"]
    assert set(result.attempts[0].sources.values()) == {ParamSource.PRIOR}
