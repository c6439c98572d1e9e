"""HAGRunnable as a LangChain Runnable: inputs, LCEL, batch, stream, async, callbacks."""

import asyncio
from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, SystemMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableSerializable

from hag_agent import HAGInputError, HAGResult, HAGRunnable, InvalidSettingsError, TaskKind
from hag_agent.testing import ScriptedChatModel

PROPOSAL = '{"temperature": 0.4, "top_p": 0.85, "top_k": 30, "min_p": 0.0, "repetition_penalty": 1.05, "max_tokens": 300}'
ANSWER = "Bonjour means hello in French."


def make(**settings: Any) -> tuple[HAGRunnable, ScriptedChatModel]:
    model = ScriptedChatModel(script={"propose": [PROPOSAL], "generate": [ANSWER]})
    settings.setdefault("proposer", "self")  # these tests script the model's own proposal
    return HAGRunnable(model=model, **settings), model


def test_is_a_real_runnable() -> None:
    runnable, _ = make()
    assert isinstance(runnable, RunnableSerializable)


@pytest.mark.parametrize(
    "value",
    [
        "Say hello in French",
        [HumanMessage("Say hello in French")],
        [("system", "Be brief."), ("user", "Say hello in French")],
        HumanMessage("Say hello in French"),
        {"prompt": "Say hello in French"},
        {"messages": [{"role": "user", "content": "Say hello in French"}]},
        ChatPromptTemplate.from_template("Say {w} in French").invoke({"w": "hello"}),
    ],
    ids=["str", "messages", "tuples", "message", "dict-prompt", "dict-messages", "prompt-value"],
)
def test_input_types(value: Any) -> None:
    runnable, model = make()
    result = runnable.invoke(value)
    assert isinstance(result, HAGResult) and isinstance(result, AIMessage)
    assert str(result) == ANSWER and result.answer == ANSWER
    sent = model.calls_for("generate")[0].messages
    assert sent[-1].text == "Say hello in French"


def test_system_message_reaches_generation() -> None:
    runnable, model = make()
    runnable.invoke([SystemMessage("Be brief."), HumanMessage("Say hello in French")])
    assert model.calls_for("generate")[0].messages[0].text == "Be brief."


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("", "empty"),
        ("   \n\t", "empty"),
        ([], "empty"),
        ([AIMessage("hi")], "empty"),
        (42, "unsupported input type int"),
        (None, "unsupported input type NoneType"),
        ({"text": "hi"}, "exactly one of"),
        ({"prompt": "hi", "messages": []}, "exactly one of"),
        ([{"role": "wizard", "content": "x"}], "cannot read the messages"),
    ],
)
def test_bad_input_is_a_typed_error_before_any_call(value: Any, match: str) -> None:
    runnable, model = make()
    with pytest.raises(HAGInputError, match=match):
        runnable.invoke(value)
    assert model.calls == []


def test_bad_settings_fail_at_construction_and_per_call() -> None:
    with pytest.raises(InvalidSettingsError, match="max_retries"):
        HAGRunnable(model=ScriptedChatModel(), max_retries=-1)
    runnable, model = make()
    with pytest.raises(InvalidSettingsError, match="nonsense"):
        runnable.invoke({"prompt": "hi", "nonsense": 1})
    assert model.calls == []


def test_per_call_settings_beat_the_runnable_context() -> None:
    runnable, _model = make(task="math")
    result = runnable.invoke({"prompt": "Say hello in French", "task": "translation"})
    assert result.task is TaskKind.TRANSLATION
    assert runnable.invoke("Say hello in French").task is TaskKind.MATH


def test_lcel_chain_invoke_and_batch() -> None:
    runnable, model = make()
    chain = ChatPromptTemplate.from_template("Say {word} in French") | runnable | StrOutputParser()
    assert chain.invoke({"word": "hello"}) == ANSWER
    assert chain.batch([{"word": "hello"}, {"word": "bye"}, {"word": "yes"}]) == [ANSWER] * 3
    prompts = sorted(c.messages[-1].text for c in model.calls_for("generate"))
    assert prompts == sorted(
        ["Say hello in French"] * 2 + ["Say bye in French", "Say yes in French"]
    )


def test_batch_returns_exceptions_when_asked() -> None:
    runnable, _ = make()
    results = runnable.batch(["Say hello in French", ""], return_exceptions=True)
    assert str(results[0]) == ANSWER and isinstance(results[1], HAGInputError)


def test_stream_yields_tokens_and_node_events() -> None:
    runnable, _ = make()
    chunks = list(runnable.stream("Say hello in French"))
    assert all(isinstance(c, AIMessageChunk) for c in chunks)
    tokens = [c.text for c in chunks if c.text]
    assert len(tokens) == len(ANSWER.split(" ")) and "".join(tokens) == ANSWER
    events = [e for c in chunks for e in c.additional_kwargs.get("hag_events", [])]
    nodes = [e["node"] for e in events if e["type"] == "node"]
    assert nodes == ["classify", "propose", "generate", "critique"]
    assert events[1]["params"]["temperature"] == 0.4 and events[1]["sources"]["top_k"] == "model"
    assert events[-1]["type"] == "result" and events[-1]["result"]["answer"] == ANSWER
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    assert total.text == ANSWER and len(total.additional_kwargs["hag_events"]) == len(events)


def test_stream_marks_retries() -> None:
    model = ScriptedChatModel(
        script={"propose": [PROPOSAL], "generate": ["a a a a a a a a a a a a a a", ANSWER]}
    )
    chunks = list(HAGRunnable(model=model, proposer="self").stream("Say hello in French"))
    events = [e for c in chunks for e in c.additional_kwargs.get("hag_events", [])]
    assert [e["node"] for e in events if e["type"] == "retry"] == ["adjust"]
    assert events[-1]["result"]["best_attempt"] == 1


def test_stream_final_mode_yields_only_the_chosen_answer() -> None:
    model = ScriptedChatModel(
        script={"propose": [PROPOSAL], "generate": ["a a a a a a a a a a a a a a", ANSWER]}
    )
    chunks = list(
        HAGRunnable(model=model, proposer="self", stream_tokens="final").stream(
            "Say hello in French"
        )
    )
    assert "".join(c.text for c in chunks) == ANSWER


def test_stream_none_mode_streams_no_text_and_does_not_stream_the_model() -> None:
    streamed: list[bool] = []

    class Counting(ScriptedChatModel):
        def _stream(self, *args: Any, **kwargs: Any) -> Any:
            streamed.append(True)
            yield from super()._stream(*args, **kwargs)

    model = Counting(script={"generate": [ANSWER]})
    runnable = HAGRunnable(model=model, proposer="prior", stream_tokens="none")
    chunks = list(runnable.stream("Say hello in French"))
    assert "".join(c.text for c in chunks) == ""
    assert chunks[-1].additional_kwargs["hag_events"][-1]["result"]["answer"] == ANSWER
    assert not streamed
    list(HAGRunnable(model=model, proposer="prior").stream("Say hello in French"))
    assert streamed  # the live mode does stream the model


def test_lcel_chain_stream() -> None:
    runnable, _ = make()
    chain = ChatPromptTemplate.from_template("Say {word} in French") | runnable | StrOutputParser()
    assert "".join(chain.stream({"word": "hello"})) == ANSWER


async def test_async_invoke_batch_and_stream() -> None:
    runnable, _ = make()
    chain = ChatPromptTemplate.from_template("Say {word} in French") | runnable | StrOutputParser()
    assert await chain.ainvoke({"word": "hello"}) == ANSWER
    results = await runnable.abatch(["Say hello in French"] * 8)
    assert [str(r) for r in results] == [ANSWER] * 8
    parts = [c async for c in chain.astream({"word": "hello"})]
    assert "".join(parts) == ANSWER
    chunks = [c async for c in runnable.astream("Say hello in French")]
    assert chunks[-1].additional_kwargs["hag_events"][0]["type"] == "result"


async def test_async_runs_overlap() -> None:
    """Async runs do not block each other: a slow model call lets the others proceed."""
    started: list[str] = []

    class SlowModel(ScriptedChatModel):
        async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs):  # type: ignore[no-untyped-def]
            started.append(messages[-1].text)
            await asyncio.sleep(0.2)
            return self._generate(messages, stop, None, **kwargs)

    model = SlowModel(script={"generate": [ANSWER]})
    runnable = HAGRunnable(model=model, proposer="prior")
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await runnable.abatch([f"Say {i} in French" for i in range(10)])
    assert loop.time() - t0 < 1.0  # 10 x 0.2 s sequentially would be 2 s
    assert len(started) == 10


class Recorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.chat_starts: list[list[str]] = []
        self.chain_names: list[str] = []

    def on_chat_model_start(
        self,
        serialized: Any,
        messages: Any,
        *,
        run_id: UUID,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        self.chat_starts.append(list(tags or []))

    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.chain_names.append(kwargs.get("name") or "")


def test_callbacks_reach_inner_chat_model_calls() -> None:
    runnable, _ = make()
    recorder = Recorder()
    runnable.invoke("Say hello in French", config={"callbacks": [recorder], "tags": ["mine"]})
    purposes = sorted(t for tags in recorder.chat_starts for t in tags if t.startswith("hag:"))
    assert purposes == ["hag:generate", "hag:propose"]
    assert all("mine" in tags for tags in recorder.chat_starts)
    assert "hag-agent" in recorder.chain_names


def test_with_config_works() -> None:
    runnable, _ = make()
    recorder = Recorder()
    configured = runnable.with_config(callbacks=[recorder], run_name="my-hag")
    assert str(configured.invoke("Say hello in French")) == ANSWER
    assert "my-hag" in recorder.chain_names and recorder.chat_starts


def test_result_serializes_to_json() -> None:
    runnable, _ = make()
    data = runnable.invoke("Say hello in French").to_json_dict()
    assert data["answer"] == ANSWER and data["params"]["temperature"] == 0.4
    assert data["attempts"][0]["sources"]["top_p"] == "model"
    assert [t["node"] for t in data["trace"]] == [
        "classify",
        "propose",
        "generate",
        "critique",
        "finish",
    ]
