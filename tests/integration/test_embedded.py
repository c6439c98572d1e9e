"""The embedded default with the real SmolLM2-135M-Instruct model, in process."""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from hag_agent import DecodingBounds, HAGInputError, HAGRunnable, HyperParams, ParamSource, TaskKind
from hag_agent.backends import GenerationRequest
from hag_agent.backends.base import DecisionRequest, OutputConstraint
from hag_agent.backends.embedded import EmbeddedBackend
from hag_agent.proposal import ProposalSchema, parse_proposal
from hag_agent.tasks import TASK_PRIORS

CREATIVE = HyperParams(
    temperature=1.0, top_p=0.95, top_k=0, min_p=0.0, repetition_penalty=1.0, max_tokens=40
)
PROMPT = [HumanMessage("Write one sentence about a dragon.")]


def test_structured_proposal_parses_into_hyperparams(embedded: EmbeddedBackend) -> None:
    decision = embedded.decide(
        DecisionRequest(
            [HumanMessage("Choose decoding settings for: write a poem")],
            ProposalSchema,
            constraint=OutputConstraint.COMPACT_NUMERIC_OBJECT,
            max_tokens=120,
        )
    )
    assert decision.error is None, decision.raw_text
    parsed = parse_proposal(
        decision.raw_text, prior=TASK_PRIORS[TaskKind.CREATIVE], bounds=DecodingBounds()
    )
    assert isinstance(parsed.params, HyperParams)  # bounded, whatever the untuned model said
    assert parsed.fallback_reason is None or parsed.fallback_reason.startswith("implausible")


def test_seeded_calls_repeat_exactly(embedded: EmbeddedBackend) -> None:
    first = embedded.generate(GenerationRequest(PROMPT, CREATIVE, seed=7)).text
    embedded.generate(
        GenerationRequest([HumanMessage("Something else entirely, please.")], CREATIVE, seed=1)
    )
    again = embedded.generate(GenerationRequest(PROMPT, CREATIVE, seed=7)).text
    other = embedded.generate(GenerationRequest(PROMPT, CREATIVE, seed=8)).text
    assert first == again and first.strip()
    assert other != first  # the seed matters at temperature 1


def test_temperature_zero_repeats(embedded: EmbeddedBackend) -> None:
    greedy = CREATIVE.model_copy(update={"temperature": 0.0})
    assert (
        embedded.generate(GenerationRequest(PROMPT, greedy)).text
        == embedded.generate(GenerationRequest(PROMPT, greedy)).text
    )


def test_max_tokens_is_respected(embedded: EmbeddedBackend) -> None:
    short = CREATIVE.model_copy(update={"max_tokens": 5})
    result = embedded.generate(
        GenerationRequest([HumanMessage("Tell me a long story about the sea.")], short, seed=1)
    )
    assert result.finish_reason == "length"
    assert result.completion_tokens == 5
    assert result.prompt_tokens and result.prompt_tokens > 5


def test_stream_equals_invoke(embedded: EmbeddedBackend) -> None:
    kwargs = embedded.call_kwargs(CREATIVE, seed=3)
    streamed = "".join(c.text for c in embedded.chat_model.stream(PROMPT, **kwargs))
    invoked = embedded.chat_model.invoke(PROMPT, **kwargs).text
    assert streamed == invoked and streamed


def test_several_system_messages_are_merged(embedded: EmbeddedBackend) -> None:
    messages = [
        SystemMessage("Be brief."),
        SystemMessage("Answer in English."),
        HumanMessage("Hi!"),
    ]
    assert embedded.generate(GenerationRequest(messages, CREATIVE, seed=1)).text


def test_prompt_longer_than_the_context_is_an_input_error(embedded: EmbeddedBackend) -> None:
    with pytest.raises(HAGInputError, match="context"):
        embedded.generate(GenerationRequest([HumanMessage("word " * 5000)], CREATIVE))


PROMPTS = {
    TaskKind.MATH: "What is 15 + 27?",
    TaskKind.REASONING: "A coin is heads up. Alice flips it. Is it still heads up? Answer yes or no.",
    TaskKind.TRANSLATION: "Translate 'thank you very much' into French.",
    TaskKind.CREATIVE: "Write a haiku about autumn leaves.",
    TaskKind.CODE: "Write a Python function that returns the square of a number.",
    TaskKind.FACTUAL: "What is the capital of Japan?",
    TaskKind.CHAT: "Hello! How is your day going?",
}


@pytest.mark.parametrize("task", list(PROMPTS), ids=[t.value for t in PROMPTS])
def test_graph_answers_each_task_kind_end_to_end(task: TaskKind) -> None:
    result = HAGRunnable(max_retries=0, seed=1, params={"max_tokens": 96}).invoke(PROMPTS[task])
    assert result.task is task
    assert result.text.strip()
    attempt = result.attempts[0]
    assert attempt.sources["max_tokens"] is ParamSource.PINNED and attempt.params.max_tokens == 96
    assert attempt.completion_tokens is not None and attempt.completion_tokens <= 96
    propose = next(e for e in result.trace if e.node == "propose")
    assert propose.data["params"] == attempt.params.model_dump()
    # The embedded default's proposer, chosen by measurement: the task prior, no model call.
    assert propose.data["proposer"] == "prior" and propose.data["default_because"]
    assert set(attempt.sources.values()) <= {ParamSource.PRIOR, ParamSource.PINNED}


async def test_async_batch_on_the_embedded_model() -> None:
    runnable = HAGRunnable(max_retries=0, proposer="prior", params={"max_tokens": 24}, seed=2)
    results = await runnable.abatch(["Say hi.", "Name a colour.", "Name a fruit."])
    assert all(r.text.strip() for r in results)


def test_seeded_multi_turn_repeats_whatever_was_cached(embedded: EmbeddedBackend) -> None:
    """Reusing the cache of generated tokens would change the sampling; we never do."""
    from langchain_core.messages import AIMessage

    story = CREATIVE.model_copy(update={"max_tokens": 60})
    first = embedded.generate(GenerationRequest(PROMPT, story, seed=5)).text
    follow_up = [*PROMPT, AIMessage(first), HumanMessage("Continue the story.")]
    right_after = embedded.generate(
        GenerationRequest(follow_up, story, seed=5)
    ).text  # cache holds `first`
    embedded.chat_model.engine().llama.reset()  # type: ignore[attr-defined]
    from_scratch = embedded.generate(GenerationRequest(follow_up, story, seed=5)).text
    assert right_after == from_scratch


def test_engine_loads_once_across_threads() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from hag_agent.backends.llama_cpp_chat import default_model_path, load_engine

    with ThreadPoolExecutor(8) as pool:
        engines = list(pool.map(lambda _: load_engine(default_model_path(), 1024, 1), range(8)))
    assert all(e is engines[0] for e in engines)


def test_a_long_request_costs_the_proposal_a_bounded_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """The proposal reads its task kind's instructions once per process and a long request
    clipped; the answer reads its own prompt (only the template's start is shared)."""
    from llama_cpp import Llama

    evaluated: list[int] = []
    real_eval = Llama.eval

    def counting_eval(self: Llama, tokens: list[int]) -> None:
        evaluated.append(len(tokens))
        real_eval(self, tokens)

    monkeypatch.setattr(Llama, "eval", counting_eval)
    document = "The quick brown fox jumps over the lazy dog near the river bank. " * 20
    hag = HAGRunnable(proposer="self", max_retries=0, task="factual", params={"max_tokens": 8})
    batches = []
    for question in ("Summarise this.", "Who jumps?"):
        evaluated.clear()
        result = hag.invoke(f"{document}\n{question}")
        batches.append([n for n in evaluated if n > 1])
    attempt = result.attempts[0]
    assert attempt.prompt_tokens and attempt.prompt_tokens > 250
    first, second = batches
    # The instructions were read on the first turn only: the second restored their state.
    assert len(first) == len(second) + 1 and first[0] > 80
    # The proposal read the request clipped to its start and end (about 500 characters).
    assert second[0] < 150
    # The answer read its whole prompt but the template's start.
    assert second[-1] > attempt.prompt_tokens - 40


def test_builtin_tuned_proposer_speaks_the_proposal_format() -> None:
    """The packaged adapter: every value it learned comes from the model, none falls back.

    The values its training data held fixed are not its choice: min_p stays at the value the data
    held (source ``fixed``), max_tokens is pinned here.
    """
    from hag_agent.backends.embedded import EmbeddedOptions

    tuned = EmbeddedBackend(EmbeddedOptions(n_threads=1, proposer_lora_path="builtin"))
    runnable = HAGRunnable(model=tuned, proposer="self-tuned")
    prompts = {
        TaskKind.CREATIVE: "Write one sentence that uses all of these words: moon, bread, river.",
        TaskKind.MATH: "A box holds 6 eggs. How many eggs are in 7 boxes?",
        TaskKind.TRANSLATION: "Translate into French: The train leaves at noon.",
        TaskKind.REASONING: "A coin is heads up. Ann flips the coin. Is it still heads up?",
    }
    proposed = {}
    for task, prompt in prompts.items():
        result = runnable.invoke(
            {"prompt": prompt, "task": task, "critique": False, "seed": 3,
             "params": {"max_tokens": 4}}
        )  # fmt: skip
        sources = result.attempts[0].sources
        learned = {k: v for k, v in sources.items() if k not in ("min_p", "max_tokens")}
        assert learned == dict.fromkeys(learned, ParamSource.MODEL), (task, sources)
        assert sources["min_p"] is ParamSource.FIXED, (task, sources)
        proposed[task] = result.params
    # It learned a creative configuration of its own, away from the creative prior.
    assert proposed[TaskKind.CREATIVE] != TASK_PRIORS[TaskKind.CREATIVE].model_copy(
        update={"max_tokens": 4}
    )
