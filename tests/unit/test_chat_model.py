"""ChatHAG as a LangChain chat model: LangChain's standard unit tests, and HAG's own behaviour."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler, get_usage_metadata_callback
from langchain_core.exceptions import OutputParserException
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    AnyMessage,
    HumanMessage,
    SystemMessage,
)
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import tool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_tests.unit_tests import ChatModelUnitTests
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

import hag_agent
from hag_agent import ChatHAG, ConfigurationError, HyperParams, InvalidSettingsError
from hag_agent.backends import GenerationRequest
from hag_agent.backends.chat_model import ChatModelBackend as ScriptedChatModelBackend
from hag_agent.backends.embedded import EmbeddedBackend
from hag_agent.backends.llama_cpp_tools import reply_message, reply_schema, with_tools_described
from hag_agent.backends.openai_compatible import EndpointOptions, OpenAICompatibleBackend
from hag_agent.testing import Reply, ScriptedChatModel

PROPOSAL = '{"temperature": 0.4, "top_p": 0.85, "top_k": 30, "min_p": 0.0, "repetition_penalty": 1.05, "max_tokens": 300}'
ANSWER = "Bonjour means hello in French."
PARAMS = HyperParams(
    temperature=0.5, top_p=0.9, top_k=40, min_p=0.05, repetition_penalty=1.1, max_tokens=64
)
REJECTED = "a a a a a a a a a a a a a a"  # repetitive: the signals critique sends it back


class TestChatHAGStandard(ChatModelUnitTests):
    """LangChain's standard unit tests, on a scripted model.

    Skipped by the suite itself, with our reasons:
    - ``test_init_from_env``: ChatHAG reads ``HAG_*`` variables on each call, not into attributes
      at construction (`resolve_context`); `test_environment_settings_apply` covers it.
    - ``test_serdes``: not serializable, as it holds a model object (any chat model or backend).
    """

    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return ChatHAG

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": ScriptedChatModel(script={"generate": [ANSWER]})}

    @property
    def standard_chat_model_params(self) -> dict[str, Any]:
        # Dropped: ``timeout`` and ``api_key``. ChatHAG has neither of its own: the backend's
        # apply (an endpoint's ``backend_options`` or HAG_TIMEOUT, HAG_DEADLINE, HAG_API_KEY),
        # and an unknown setting is an error. ``max_retries`` is HAG's own setting (retries
        # after a rejected attempt); ``temperature`` and ``max_tokens`` are pinned.
        dropped = {"timeout", "api_key"}
        return {k: v for k, v in super().standard_chat_model_params.items() if k not in dropped}


def make(**settings: Any) -> tuple[ChatHAG, ScriptedChatModel]:
    model = ScriptedChatModel(script={"propose": [PROPOSAL], "generate": [ANSWER]})
    settings.setdefault("proposer", "self")  # the model's own proposal, so it makes a call
    return ChatHAG(model=model, **settings), model


def joined(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    return total


def test_is_a_chat_model_exported_from_the_package() -> None:
    chat, _ = make()
    assert isinstance(chat, BaseChatModel)
    assert "ChatHAG" in hag_agent.__all__


def test_messages_reach_the_answer_as_given() -> None:
    chat, model = make()
    conversation: list[AnyMessage] = [
        SystemMessage("Be brief."),
        HumanMessage("Hi"),
        AIMessage("Hello! How can I help?"),
        HumanMessage("Say hello in French"),
    ]
    answer = chat.invoke(conversation)
    assert isinstance(answer, AIMessage) and answer.content == ANSWER
    sent = model.calls_for("generate")[0].messages
    assert [(m.type, m.text) for m in sent] == [(m.type, m.text) for m in conversation]


def test_usage_sums_every_model_call_of_the_turn() -> None:
    judged = ['{"score": 0.2, "verdict": "bad"}', '{"score": 0.9, "verdict": "good"}']
    model = ScriptedChatModel(
        script={"propose": [PROPOSAL], "generate": [REJECTED, ANSWER], "judge": judged}
    )
    answer = ChatHAG(model=model, proposer="self", critic="judge").invoke("Say hello in French")
    # The proposal, two attempts and two verdicts; the scripted model reports 10 tokens in and
    # one a word out for each call.
    replies = [PROPOSAL, REJECTED, judged[0], ANSWER, judged[1]]
    assert [c.purpose for c in model.calls] == ["propose", "generate", "judge", "generate", "judge"]
    words = sum(len(reply.split()) for reply in replies)
    assert answer.usage_metadata == {
        "input_tokens": 50,
        "output_tokens": words,
        "total_tokens": 50 + words,
    }


def test_hag_record_in_response_metadata() -> None:
    chat, _ = make(temperature=0.2, max_retries=1)
    answer = chat.invoke("Say hello in French")
    record = answer.response_metadata["hag"]
    assert record["task"] == "translation"
    assert record["proposer"] == "self"
    assert record["params"]["temperature"] == {"value": 0.2, "source": "pinned"}
    assert record["params"]["top_k"] == {"value": 30, "source": "model"}
    assert record["chosen_attempt"] == 0 and len(record["attempts"]) == 1
    assert record["stop_reason"].startswith("accepted")
    assert answer.response_metadata["model_name"] == "hag-agent"
    assert answer.response_metadata["finish_reason"] == "stop"


def test_settings_per_call_bound_and_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def attempts(chat: Any, **kwargs: Any) -> int:
        return len(
            chat.invoke("Say hello in French", **kwargs).response_metadata["hag"]["attempts"]
        )

    model = ScriptedChatModel(script={"propose": [PROPOSAL], "generate": [REJECTED]})
    chat = ChatHAG(model=model, proposer="self", max_retries=2)
    assert attempts(chat) == 3
    assert attempts(chat, max_retries=0) == 1  # per call, over the constructor's
    assert attempts(chat.bind(critique=False)) == 1
    monkeypatch.setenv("HAG_MAX_RETRIES", "1")
    assert attempts(ChatHAG(model=model, proposer="self")) == 2  # the environment, below both
    assert attempts(chat) == 3


def test_pinned_sampling_values_per_call_reach_the_answer_call() -> None:
    chat, model = make(max_tokens=64)
    answer = chat.invoke("Say hello in French", temperature=0.1, top_k=5)
    kwargs = model.calls_for("generate")[0].kwargs
    assert (kwargs["temperature"], kwargs["top_k"], kwargs["max_tokens"]) == (0.1, 5, 64)
    assert answer.response_metadata["hag"]["params"]["top_k"]["source"] == "pinned"


def test_bad_settings_are_typed_errors() -> None:
    with pytest.raises(InvalidSettingsError):
        make(max_retries=99)
    with pytest.raises(InvalidSettingsError):
        make(no_such_setting=1)
    chat, _ = make()
    with pytest.raises(InvalidSettingsError):
        chat.invoke("Say hello in French", temperature=7.0)


class StopRecorder(ScriptedChatModel):
    """Records each call's stop sequences (langchain-core hands them over apart from kwargs)."""

    stops: list[tuple[str, list[str] | None]] = Field(default_factory=list)

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):  # type: ignore[no-untyped-def]
        result = super()._generate(messages, stop, run_manager, **kwargs)
        self.stops.append((self.calls[-1].purpose, stop))
        return result


def test_stop_sequences_reach_the_answer_call_only() -> None:
    model = StopRecorder(script={"propose": [PROPOSAL], "generate": [ANSWER]})
    chat = ChatHAG(model=model, proposer="self", stop=["\n\n"])
    chat.invoke("Say hello in French")
    chat.invoke("Say hello in French", stop=["END"])
    assert model.stops == [
        ("propose", None),
        ("generate", ["\n\n"]),
        ("propose", None),
        ("generate", ["END"]),
    ]


def test_standard_params_for_tracing() -> None:
    chat, _ = make(temperature=0.3, max_tokens=50, stop=["x"])
    params = chat._get_ls_params(temperature=0.5)
    assert params["ls_temperature"] == 0.5 and params["ls_max_tokens"] == 50
    assert params["ls_stop"] == ["x"] and params["ls_provider"] == "hag-agent"


def test_stream_with_one_attempt_yields_tokens_as_generated() -> None:
    chat, _ = make(critique=False)
    chunks = list(chat.stream("Say hello in French"))
    texts = [c.text for c in chunks if c.text]
    assert texts == ["Bonjour", " means", " hello", " in", " French."]
    total = joined(chunks)
    assert total.text == ANSWER and chunks[-1].chunk_position == "last"
    assert total.usage_metadata is not None and total.usage_metadata["input_tokens"] == 20
    assert total.response_metadata["hag"]["stop_reason"].startswith("critique off")


def test_stream_never_sends_a_rejected_attempt() -> None:
    model = ScriptedChatModel(script={"propose": [PROPOSAL], "generate": [REJECTED, ANSWER]})
    chat = ChatHAG(model=model, proposer="self")
    chunks = list(chat.stream("Say hello in French"))
    texts = [c.text for c in chunks if c.text]
    assert "".join(texts) == ANSWER and len(texts) == 5  # the chosen attempt's own tokens
    assert joined(chunks).response_metadata["hag"]["chosen_attempt"] == 1


def retrying_chat() -> ChatHAG:
    """A model whose first attempt is rejected and whose second is the answer."""
    model = ScriptedChatModel(script={"propose": [PROPOSAL], "generate": [REJECTED, ANSWER]})
    return ChatHAG(model=model, proposer="self")


async def test_async_invoke_stream_and_batch() -> None:
    answer = await retrying_chat().ainvoke("Say hello in French")
    assert answer.content == ANSWER and answer.response_metadata["hag"]["chosen_attempt"] == 1
    chunks = [c async for c in retrying_chat().astream("Say hello in French")]
    assert "".join(c.text for c in chunks) == ANSWER
    assert joined(chunks).response_metadata["hag"]["chosen_attempt"] == 1
    answers = await make()[0].abatch(["Say hello in French", "Say yes in French"])
    assert [a.content for a in answers] == [ANSWER, ANSWER]
    assert [a.content for a in make()[0].batch(["Say hello in French"] * 3)] == [ANSWER] * 3


class Starts(BaseCallbackHandler):
    def __init__(self) -> None:
        self.runs = 0

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        self.runs += 1


def test_callbacks_see_one_chat_model_run_and_count_its_usage_once() -> None:
    chat, model = tool_chat(REJECTED, ANSWER)  # a proposal, two attempts, two verdicts
    starts = Starts()
    with get_usage_metadata_callback() as counted:
        answer = chat.invoke("Say hello in French", config={"callbacks": [starts]})
    assert starts.runs == 1 and len(model.calls) == 5
    assert answer.usage_metadata is not None and answer.usage_metadata["input_tokens"] == 50
    assert counted.usage_metadata == {"hag-agent": answer.usage_metadata}


def one_node_graph(chat: ChatHAG, checkpointer: Any = None) -> Any:
    def call_model(state: MessagesState) -> dict[str, Any]:
        return {"messages": [chat.invoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", call_model)
    builder.add_edge(START, "agent")
    return builder.compile(checkpointer=checkpointer)


@pytest.mark.parametrize("critique", [True, False])
@pytest.mark.parametrize("disable_streaming", [False, True])
def test_inside_a_graph_only_answer_text_reaches_its_message_stream(
    critique: bool, disable_streaming: bool
) -> None:
    model = ScriptedChatModel(script={"propose": [PROPOSAL], "generate": [REJECTED, ANSWER]})
    chat = ChatHAG(
        model=model, proposer="self", critique=critique, disable_streaming=disable_streaming
    )
    # subgraphs=True: a caller that asks for its subgraphs' messages too gets no attempt text.
    streamed = [
        message.text
        for _, (message, _) in one_node_graph(chat).stream(
            {"messages": [HumanMessage("Say hello in French")]},
            stream_mode="messages",
            subgraphs=True,
        )
        if message.text
    ]
    expected = ANSWER if critique else REJECTED  # critique off: the first attempt is the answer
    assert "".join(streamed) == expected
    if not disable_streaming:
        assert len(streamed) > 1  # tokens, not one final chunk


@pytest.mark.parametrize("disable_streaming", [False, True])
def test_a_turn_is_not_checkpointed_in_the_callers_thread(disable_streaming: bool) -> None:
    chat, _ = make(disable_streaming=disable_streaming)
    saver = InMemorySaver()
    app = one_node_graph(chat, saver)
    thread: RunnableConfig = {"configurable": {"thread_id": "t"}}
    app.invoke({"messages": [HumanMessage("Say hello in French")]}, thread)
    assert {c.config["configurable"]["checkpoint_ns"] for c in saver.list(None)} == {""}
    assert app.get_state(thread).values["messages"][-1].content == ANSWER


@pytest.mark.parametrize("disable_streaming", [False, True])
async def test_inside_an_async_graph_only_answer_text_reaches_its_message_stream(
    disable_streaming: bool,
) -> None:
    model = ScriptedChatModel(script={"propose": [PROPOSAL], "generate": [REJECTED, ANSWER]})
    chat = ChatHAG(model=model, proposer="self", disable_streaming=disable_streaming)

    async def call_model(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await chat.ainvoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", call_model)
    builder.add_edge(START, "agent")
    parts = builder.compile().astream(
        {"messages": [HumanMessage("Say hello in French")]},
        stream_mode="messages",
        subgraphs=True,
    )
    streamed = [message.text async for _, (message, _) in parts if message.text]
    assert "".join(streamed) == ANSWER


# -- tools ---------------------------------------------------------------------------------


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


ADD_CALL = Reply("", tool_calls=[{"name": "add", "args": {"a": 2, "b": 3}}])


def tool_chat(*replies: str | Reply, **settings: Any) -> tuple[ChatHAG, ScriptedChatModel]:
    model = ScriptedChatModel(
        script={
            "propose": [PROPOSAL],
            "generate": list(replies),
            "judge": ['{"score": 9, "issues": [], "direction": "none"}'],
        }
    )
    return ChatHAG(model=model, proposer="self", critic="judge", **settings), model


def test_tools_reach_the_answer_call_only() -> None:
    chat, model = tool_chat(ADD_CALL)
    chat.bind_tools([add], tool_choice="any").invoke("What is 2 + 3?")
    generate = model.calls_for("generate")[0].kwargs
    assert [t["function"]["name"] for t in generate["tools"]] == ["add"]
    assert generate["tool_choice"] == "any"
    assert model.calls_for("propose")  # a decision call was made, and saw no tools
    assert all("tools" not in c.kwargs for c in model.calls if c.purpose != "generate")


def test_a_well_formed_tool_call_is_the_answer_without_a_retry() -> None:
    chat, model = tool_chat(ADD_CALL, ANSWER, max_retries=2)
    answer = chat.bind_tools([add]).invoke("What is 2 + 3?")
    assert [(c["name"], c["args"]) for c in answer.tool_calls] == [("add", {"a": 2, "b": 3})]
    assert len(model.calls_for("generate")) == 1 and not model.calls_for("judge")
    record = answer.response_metadata["hag"]
    assert record["stop_reason"].startswith("accepted")
    assert record["attempts"][0]["critique"]["source"] == "tool calls"
    assert record["params"]["temperature"] == {"value": 0.4, "source": "model"}


def test_a_call_of_an_unknown_tool_is_retried_more_deterministically() -> None:
    wrong = Reply("", tool_calls=[{"name": "multiply", "args": {"a": 2, "b": 3}}])
    chat, _ = tool_chat(wrong, ADD_CALL, max_retries=2)
    answer = chat.bind_tools([add]).invoke("What is 2 + 3?")
    assert [c["name"] for c in answer.tool_calls] == ["add"]
    first, second = answer.response_metadata["hag"]["attempts"]
    assert "unknown tool 'multiply'" in first["critique"]["issues"][0]
    assert second["params"]["temperature"] < first["params"]["temperature"]


def test_a_streamed_tool_call_arrives_whole() -> None:
    chat, _ = tool_chat(ADD_CALL)
    total = joined(list(chat.bind_tools([add]).stream("What is 2 + 3?")))
    assert [(c["name"], c["args"]) for c in total.tool_calls] == [("add", {"a": 2, "b": 3})]


def test_a_model_that_cannot_call_tools_is_a_configuration_error() -> None:
    chat = ChatHAG(model=FakeListChatModel(responses=[ANSWER]))
    with pytest.raises(ConfigurationError, match="cannot call tools"):
        chat.bind_tools([add]).invoke("What is 2 + 3?")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # create_react_agent moved to langchain
def test_a_react_agent_runs_its_tool_loop() -> None:
    from langgraph.prebuilt import create_react_agent

    chat, model = tool_chat(ADD_CALL, "The sum is 5.")
    agent = create_react_agent(chat, [add])
    messages = agent.invoke({"messages": [HumanMessage("What is 2 + 3?")]})["messages"]
    assert [m.type for m in messages] == ["human", "ai", "tool", "ai"]
    assert messages[2].content == "5" and messages[3].content == "The sum is 5."
    # The second answer saw the tool's result; both answers are HAG turns with their records.
    assert model.calls_for("generate")[1].messages[-1].type == "tool"
    assert messages[3].response_metadata["hag"]["params"]["temperature"]["source"] == "model"
    streamed = [
        m.text
        for m, _ in create_react_agent(tool_chat(ADD_CALL, "The sum is 5.")[0], [add]).stream(
            {"messages": [HumanMessage("What is 2 + 3?")]}, stream_mode="messages"
        )
        if m.type == "AIMessageChunk"
    ]
    assert "".join(streamed) == "The sum is 5." and len(streamed) > 1


# -- structured output -----------------------------------------------------------------------


class Joke(BaseModel):
    setup: str
    punchline: str


class JokeDict(TypedDict):
    setup: str
    punchline: str


JOKE = (
    '{"setup": "Why did the cat sit on the computer?", "punchline": "To keep an eye on the mouse."}'
)


def test_structured_output_retries_an_invalid_answer_and_parses_the_valid_one() -> None:
    chat, model = tool_chat('{"setup": "Why?"}', f"```json\n{JOKE}\n```", max_retries=2)
    joke = chat.with_structured_output(Joke).invoke("Tell me a joke about cats")
    assert isinstance(joke, Joke) and joke.punchline == "To keep an eye on the mouse."
    assert len(model.calls_for("generate")) == 2
    assert not model.calls_for("judge")  # the schema judges a structured answer, not the judge
    assert len(model.calls_for("propose")) == 1  # the proposal still chose the sampling values


def test_structured_output_still_invalid_raises_or_is_returned_raw() -> None:
    chat, model = tool_chat("not json", max_retries=1)
    with pytest.raises(OutputParserException):
        chat.with_structured_output(Joke).invoke("Tell me a joke about cats")
    assert len(model.calls_for("generate")) == 2  # through the retry loop first
    raw = tool_chat("not json", max_retries=1)[0].with_structured_output(Joke, include_raw=True)
    result = raw.invoke("Tell me a joke about cats")
    assert isinstance(result, dict) and result["parsed"] is None
    assert isinstance(result["parsing_error"], OutputParserException)
    assert result["raw"].response_metadata["hag"]["stop_reason"] == "retries exhausted (1)"


@pytest.mark.parametrize(
    "schema", [JokeDict, Joke.model_json_schema()], ids=["typed-dict", "json-schema"]
)
def test_structured_output_of_a_typed_dict_or_a_json_schema(schema: Any) -> None:
    chat, model = tool_chat('{"setup": "Why?"}', JOKE, max_retries=1)
    joke = chat.with_structured_output(schema).invoke("Tell me a joke about cats")
    assert joke == json.loads(JOKE) and len(model.calls_for("generate")) == 2


def test_structured_output_by_function_calling() -> None:
    call = Reply("", tool_calls=[{"name": "Joke", "args": json.loads(JOKE)}])
    chat, model = tool_chat(call)
    joke = chat.with_structured_output(Joke, method="function_calling").invoke("A cat joke")
    assert joke == Joke.model_validate_json(JOKE)
    assert model.calls_for("generate")[0].kwargs["tool_choice"] == "Joke"


def test_structured_output_streams_the_parsed_object() -> None:
    chat, _ = tool_chat(JOKE)
    parts = list(chat.with_structured_output(Joke).stream("A cat joke"))
    # LangChain's parser gives the object as it grows; only the chosen answer's tokens arrive.
    assert all(isinstance(p, Joke) for p in parts) and len(parts) > 1
    assert parts[-1] == Joke.model_validate_json(JOKE)


def test_backends_constrain_the_answer_by_their_structured_output_mode() -> None:
    request = GenerationRequest(
        [HumanMessage("A cat joke")], PARAMS, options={"output_schema": Joke}
    )
    embedded = EmbeddedBackend.__new__(EmbeddedBackend)  # no model loaded: arguments only
    kwargs = embedded.answer_kwargs(request)
    assert kwargs["response_format"]["type"] == "json_object"
    assert kwargs["response_format"]["schema"]["required"] == ["setup", "punchline"]
    assert kwargs["temperature"] == PARAMS.temperature
    endpoint = OpenAICompatibleBackend(EndpointOptions(base_url="http://127.0.0.1:9/v1", model="m"))
    body = endpoint.answer_kwargs(request)["extra_body"]
    assert body["top_k"] == PARAMS.top_k  # the sampler's values are kept beside the format
    assert body["response_format"]["json_schema"]["name"] == "Joke"
    plain = ScriptedChatModelBackend(ScriptedChatModel())
    assert "response_format" not in plain.answer_kwargs(request)  # the prompt alone asks


# -- the embedded model's grammar-held tool calls ------------------------------------------------


def test_the_embedded_reply_format_for_tools() -> None:
    tools = [convert_to_openai_tool(add)]
    forced = reply_schema(tools, "any")["anyOf"]
    assert [o["properties"]["tool"] for o in forced] == [{"const": "add"}]
    assert len(reply_schema(tools, None)["anyOf"]) == 2  # a call, or an answer in text
    described = with_tools_described([HumanMessage("What is 2 + 3?")], tools, "any")
    assert described[0].type == "system" and "add" in described[0].text
    call = reply_message('{"tool": "add", "arguments": {"name": "你好\\u554a"}}', {})
    assert call.tool_calls[0]["args"] == {"name": "你好啊"}  # Unicode, unescaped
    assert reply_message('{"answer": "5"}', {}).content == "5"
    cut = reply_message('{"tool": "add", "argu', {})
    assert cut.invalid_tool_calls and not cut.tool_calls  # the critique sends it back
