"""``hag.session`` on the server, in process over a scripted model and a real SQLite file."""

import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from rich.console import Console

from hag_agent.chat.terminal import ChatSession
from hag_agent.errors import BackendError
from hag_agent.serve.api_errors import APIError
from hag_agent.serve.app import create_app
from hag_agent.serve.sessions import new_part
from hag_agent.serve.settings import ServerSettings
from hag_agent.sessions import SessionStore
from hag_agent.testing import Reply, ScriptedChatModel


def echo(messages: list[BaseMessage], kwargs: dict[str, Any]) -> str | Reply:
    question = messages[-1].text
    if "FAIL" in question:
        return Reply("", error=BackendError("upstream broke", status=500))
    return f"{question}: seen {len(messages)} messages"


def server(tmp_path: Path) -> tuple[TestClient, ScriptedChatModel]:
    model = ScriptedChatModel(script={"generate": [echo]})
    settings = ServerSettings(run_settings={"proposer": "prior"}, sessions=str(tmp_path))
    return TestClient(create_app(settings, model=model)), model


def say(c: TestClient, *texts: str, session: str = "s1", **body: Any) -> httpx.Response:
    messages = [{"role": "user", "content": t} for t in texts]
    return c.post(
        "/v1/chat/completions",
        json={"model": "hag-agent", "messages": messages, "hag": {"session": session}, **body},
    )


def streamed_text(response: httpx.Response) -> str:
    data = [line[6:] for line in response.text.splitlines() if line.startswith("data: {")]
    chunks = [json.loads(d) for d in data]
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


def history(tmp_path: Path, name: str = "s1") -> list[tuple[str, str]]:
    from hag_agent.runnable import HAGRunnable

    store = SessionStore(tmp_path)
    try:
        graph = HAGRunnable(checkpointer=store.checkpointer).graph
        return [(m.type, m.text) for m in store.messages(graph, store.head(graph, name))]
    finally:
        store.close()


# -- what a request adds to a session ---------------------------------------------------------


def test_a_new_session_takes_the_messages_as_they_are() -> None:
    sent = [SystemMessage("Be brief."), HumanMessage("Hi")]
    assert new_part([], sent) == sent


def test_only_the_new_part_of_a_whole_conversation_is_added() -> None:
    history = [SystemMessage("Be brief."), HumanMessage("Hi"), AIMessage("Hello!")]
    assert new_part(history, [HumanMessage("More")]) == [HumanMessage("More")]
    resent = [SystemMessage("Be brief."), HumanMessage("Hi"), AIMessage("Hello! ")]
    assert new_part(history, [*resent, HumanMessage("More")]) == [HumanMessage("More")]
    two = [HumanMessage("a"), HumanMessage("b")]
    assert new_part(history, two) == two


@pytest.mark.parametrize(
    ("sent", "where"),
    [
        ([SystemMessage("Now be verbose."), HumanMessage("More")], "messages[0].role"),
        # an edited history is not the session's: its assistant message is refused
        ([HumanMessage("Hi!"), AIMessage("Hello!"), HumanMessage("More")], "messages[1].role"),
    ],
)
def test_what_cannot_continue_a_session_is_a_400(sent: list[Any], where: str) -> None:
    history = [HumanMessage("Hi"), AIMessage("Hello!")]
    with pytest.raises(APIError) as refused:
        new_part(history, sent)
    assert refused.value.status == 400 and refused.value.param == where


# -- over HTTP ----------------------------------------------------------------------------------


def test_a_session_keeps_the_conversation_on_the_server(tmp_path: Path) -> None:
    with server(tmp_path)[0] as c:
        first = say(c, "one")
        assert first.status_code == 200, first.text
        assert first.headers["x-hag-session"] == "s1"
        assert first.json()["hag"]["session"] == "s1"
        second = say(c, "two")
        assert second.json()["choices"][0]["message"]["content"] == "two: seen 3 messages"
        other = say(c, "alone", session="s2")  # sessions do not mix
        assert other.json()["choices"][0]["message"]["content"] == "alone: seen 1 messages"
        plain = say(c, "no session", session=None)  # type: ignore[arg-type]
        assert plain.status_code == 200 and "x-hag-session" not in plain.headers
    assert history(tmp_path) == [
        ("human", "one"),
        ("ai", "one: seen 1 messages"),
        ("human", "two"),
        ("ai", "two: seen 3 messages"),
    ]
    assert {s.name: s.turns for s in SessionStore(tmp_path).sessions()} == {"s1": 2, "s2": 1}


def test_a_client_resending_the_whole_conversation_adds_only_its_end(tmp_path: Path) -> None:
    with server(tmp_path)[0] as c:
        system = {"role": "system", "content": "Be brief."}
        body = {"model": "hag-agent", "hag": {"session": "s1"}}
        first = [system, {"role": "user", "content": "one"}]
        answer = c.post("/v1/chat/completions", json={**body, "messages": first}).json()
        whole = [
            *first,
            {"role": "assistant", "content": answer["choices"][0]["message"]["content"]},
            {"role": "user", "content": "two"},
        ]
        again = c.post("/v1/chat/completions", json={**body, "messages": whole})
        assert again.json()["choices"][0]["message"]["content"] == "two: seen 4 messages"
        late_system = c.post(
            "/v1/chat/completions",
            json={**body, "messages": [system, {"role": "user", "content": "three"}]},
        )
        assert late_system.status_code == 400
        assert late_system.json()["error"]["param"] == "messages[0].role"
    assert [t for t, _ in history(tmp_path)] == ["system", "human", "ai", "human", "ai"]


def test_a_failed_or_streamed_turn(tmp_path: Path) -> None:
    with server(tmp_path)[0] as c:
        assert say(c, "one").status_code == 200
        assert say(c, "FAIL now").status_code == 502
        streamed = say(c, "FAIL again", stream=True)
        assert streamed.status_code == 200 and '"error"' in streamed.text
        after = say(c, "two", stream=True)
        assert after.headers["x-hag-session"] == "s1"
        assert streamed_text(after) == "two: seen 3 messages"
    # the failed turns left nothing; the streamed one is kept
    assert [text for _, text in history(tmp_path)][::2] == ["one", "two"]
    assert history(tmp_path)[-1] == ("ai", "two: seen 3 messages")
    assert SessionStore(tmp_path).sessions()[0].turns == 2


def test_a_failed_first_turn_leaves_nothing(tmp_path: Path) -> None:
    with server(tmp_path)[0] as c:
        assert say(c, "FAIL first").status_code == 502
        after = say(c, "one")
        assert after.json()["choices"][0]["message"]["content"] == "one: seen 1 messages"
    assert history(tmp_path) == [("human", "one"), ("ai", "one: seen 1 messages")]


def test_a_session_running_a_turn_elsewhere_is_409(tmp_path: Path) -> None:
    store = SessionStore(tmp_path)
    held = store.turn_lock("s1")  # as another process in the middle of a turn would
    try:
        with server(tmp_path)[0] as c:
            busy = say(c, "one")
            assert busy.status_code == 409 and busy.headers["retry-after"] == "1"
            assert busy.json()["error"]["code"] == "session_busy"
            held.release()
            assert say(c, "one").status_code == 200
    finally:
        held.release()
        store.close()


def test_bad_names_and_an_unusable_store(tmp_path: Path) -> None:
    with server(tmp_path)[0] as c:
        bad = say(c, "one", session="../etc")
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "hag.session"
    blocker = tmp_path / "file"
    blocker.write_text("not a directory", encoding="utf-8")
    with server(blocker / "sub")[0] as c:
        down = say(c, "one")
        assert down.status_code == 503 and "sessions are unavailable" in down.text
        assert say(c, "one", session=None).status_code == 200  # type: ignore[arg-type]


def test_the_chat_continues_a_session_the_server_started(tmp_path: Path) -> None:
    with server(tmp_path)[0] as c:
        say(c, "from the server")
    model = ScriptedChatModel(script={"generate": [echo]})
    chat = ChatSession(
        SessionStore(tmp_path),
        "s1",
        {"chat_model": model, "proposer": "prior"},
        console=Console(file=io.StringIO()),
        interactive=False,
    )
    assert chat.turns == 1
    result = chat.turn("from the chat")
    assert result is not None and result.text == "from the chat: seen 3 messages"
    chat.store.close()
