"""Chat logic with a scripted model: commands, settings, sessions on a real SQLite file."""

import io
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage
from rich.console import Console

from hag_agent import HAGInputError, InvalidSettingsError, TaskKind
from hag_agent.chat.commands import CommandError, is_command, parse_command
from hag_agent.chat.settings import ChatSettings, parse_assignment
from hag_agent.chat.terminal import ChatSession
from hag_agent.chat.turn_view import transcript_markdown
from hag_agent.sessions import SessionStore, check_session_name, default_data_dir
from hag_agent.testing import ScriptedChatModel

PROPOSAL = '{"temperature": 0.4, "top_p": 0.85, "top_k": 30, "min_p": 0.0, "repetition_penalty": 1.05, "max_tokens": 300}'


def echo(messages: list[BaseMessage], kwargs: dict[str, Any]) -> str:
    question = messages[-1].text
    if "CANCEL" in question:
        raise KeyboardInterrupt  # what Ctrl-C raises in the middle of a generation
    return f"Answer to: {question}. There are {len(messages)} messages so far."


def session(tmp_path: Path, name: str = "s1") -> tuple[ChatSession, io.StringIO, ScriptedChatModel]:
    model = ScriptedChatModel(script={"propose": [PROPOSAL], "generate": [echo]})
    out = io.StringIO()
    chat = ChatSession(
        SessionStore(tmp_path),
        name,
        {"chat_model": model, "proposer": "self"},
        console=Console(file=out, width=200),
        interactive=False,
    )
    return chat, out, model


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("/grpah", "did you mean /graph"),
        ("/zzz", "unknown command /zzz; type /help"),
        ("/", "empty command"),
        ("/set", "usage: /set KEY=VALUE"),
        ("/trace now", "usage: /trace"),
    ],
)
def test_mistyped_commands_say_what_would_work(line: str, message: str) -> None:
    with pytest.raises(CommandError, match=message):
        parse_command(line)


def test_command_parsing() -> None:
    assert parse_command("/set top_k=5").args == ("top_k=5",)
    assert parse_command("/SET top_k 5").name == "set"
    assert parse_command("/quit").name == "exit"
    assert is_command("/help") and not is_command("//not a command") and not is_command("hi /x")


def test_assignments() -> None:
    assert parse_assignment("top_k=5") == ("top_k", 5.0)
    assert parse_assignment(" temperature 0.3 ") == ("temperature", 0.3)
    with pytest.raises(ValueError, match="unknown hyperparameter 'colour'; one of: temperature"):
        parse_assignment("colour=1")
    with pytest.raises(ValueError, match="not a number"):
        parse_assignment("top_p=high")
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_assignment("top_p")


def test_settings_are_checked_like_a_run() -> None:
    settings = ChatSettings(pins={"top_k": 5}, task=TaskKind.MATH, max_retries=0, critique=False)
    assert settings.run_settings() == {
        "critique": False,
        "params": {"top_k": 5},
        "task": TaskKind.MATH,
        "max_retries": 0,
    }
    with pytest.raises(InvalidSettingsError, match=r"temperature.*\[0"):
        ChatSettings(pins={"temperature": 9}).validated({})
    with pytest.raises(InvalidSettingsError, match="max_retries"):
        ChatSettings(max_retries=99).validated({})


def test_session_names_and_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert check_session_name("my-chat_1.2") == "my-chat_1.2"
    for bad in ("", "../etc", "a b", "x" * 65):
        with pytest.raises(HAGInputError, match="bad session name"):
            check_session_name(bad)
    monkeypatch.setenv("HAG_DATA_DIR", str(tmp_path / "d"))
    assert default_data_dir() == tmp_path / "d"
    monkeypatch.delenv("HAG_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "x"))
    assert default_data_dir() == tmp_path / "x" / "hag-agent"


def test_an_unusable_data_dir_is_an_input_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory", encoding="utf-8")
    with pytest.raises(HAGInputError, match="cannot open the sessions database"):
        SessionStore(blocker / "sub")


def test_turns_build_a_conversation_and_commands_reach_the_model(tmp_path: Path) -> None:
    chat, out, model = session(tmp_path)
    assert chat.handle("What is 2 + 2?")
    assert chat.handle("/set top_k=7")
    assert chat.handle("/task math")
    assert chat.handle("/critique off")
    assert chat.handle("And times 3?")
    generate = [c for c in model.calls if c.purpose == "generate"]
    assert len(generate) == 2
    assert len(generate[1].messages) == 3  # the first turn is part of the second's history
    assert generate[1].kwargs["top_k"] == 7
    assert not [c for c in model.calls[len(model.calls) - 2 :] if c.purpose == "classify"]
    assert chat.last is not None and chat.last.task == TaskKind.MATH
    assert len(chat.last.attempts) == 1 and chat.last.attempts[0].critique is None
    answers = out.getvalue().splitlines()
    assert answers[0].startswith("Answer to: What is 2 + 2?")
    assert not chat.handle("/exit")


def test_a_cancelled_turn_leaves_no_trace(tmp_path: Path) -> None:
    chat, _, model = session(tmp_path)
    chat.handle("first")
    assert chat.turn("CANCEL this one") is None
    chat.handle("second")
    last_generate = [c for c in model.calls if c.purpose == "generate"][-1]
    assert [m.text for m in last_generate.messages][::2] == ["first", "second"]
    reopened, _, _ = session(tmp_path)
    history = reopened.store.messages(reopened.runnable.graph, reopened.head)
    assert [m.text for m in history][::2] == ["first", "second"]
    assert reopened.store.sessions()[0].turns == 2


def test_a_cancelled_first_turn_leaves_no_trace(tmp_path: Path) -> None:
    chat, _, _ = session(tmp_path)
    assert chat.turn("CANCEL this one") is None  # no completed turn to fork from yet
    chat.store.close()
    again, _, model = session(tmp_path)  # as after a kill in the middle of the first turn
    again.handle("first")
    last_generate = [c for c in model.calls if c.purpose == "generate"][-1]
    assert [m.text for m in last_generate.messages] == ["first"]
    history = again.store.messages(again.runnable.graph, again.head)
    assert [m.type for m in history] == ["human", "ai"]


def test_a_turn_count_left_behind_by_a_kill_is_set_right_on_the_next_start(
    tmp_path: Path,
) -> None:
    chat, _, _ = session(tmp_path)
    chat.handle("first")
    chat.handle("second")
    # what a kill between a turn's last checkpoint and its count leaves behind
    chat.store.save("s1", chat.settings, turns=1)
    chat.store.close()
    again, _, _ = session(tmp_path)
    assert again.store.sessions()[0].turns == 2
    again.handle("third")
    assert again.store.sessions()[0].turns == 3


def test_settings_and_turns_survive_a_restart(tmp_path: Path) -> None:
    chat, _, _ = session(tmp_path)
    chat.handle("/set temperature=0.2")
    chat.handle("/retries 0")
    chat.handle("hello")
    chat.store.close()
    again, _, _ = session(tmp_path)
    assert again.settings.pins == {"temperature": 0.2} and again.settings.max_retries == 0
    # The file is a real SQLite database holding LangGraph's checkpoints and our table.
    tables = {
        row[0]
        for row in sqlite3.connect(tmp_path / "sessions.sqlite").execute(
            "SELECT name FROM sqlite_master WHERE type='table'"
        )
    }
    assert {"checkpoints", "hag_chat_sessions"} <= tables


def test_new_sessions_and_save(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    chat, _, _ = session(tmp_path)
    chat.handle("/set top_k=9")
    chat.handle("hello")
    chat.handle("/new other")
    assert chat.name == "other" and chat.settings.pins == {"top_k": 9}  # pins carry over
    chat.handle("/new s1")  # exists: refused, stays
    assert chat.name == "other"
    assert "session s1 exists" in capsys.readouterr().err
    chat.handle("hi there")
    target = tmp_path / "t.md"
    chat.handle(f"/save {target}")
    text = target.read_text(encoding="utf-8")
    assert "## You\n\nhi there" in text and "hello" not in text and "top_k=9" in text
    names = [s.name for s in chat.store.sessions()]
    assert sorted(names) == ["other", "s1"]


def test_commands_that_need_a_turn_say_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chat, _, _ = session(tmp_path)
    chat.handle("/trace")
    chat.handle("/unset top_k")
    chat.handle("/task poetry")
    chat.handle("/retries many")
    chat.handle("/save /nonexistent-dir/x.md")
    err = capsys.readouterr().err
    assert "ask something first" in err
    assert "top_k is not pinned" in err
    assert "unknown task 'poetry'; one of: math" in err
    assert "whole number" in err
    assert "nonexistent-dir" in err
    assert "Traceback" not in err


def test_transcript_markdown_lists_params() -> None:
    from langchain_core.messages import AIMessage, HumanMessage

    text = transcript_markdown(
        "n",
        [
            HumanMessage("hi"),
            AIMessage(
                "hello",
                response_metadata={
                    "hag_task": "chat",
                    "hag_attempt": 0,
                    "hag_params": {"top_k": 5},
                },
            ),
        ],
    )
    assert text == (
        "# hag-agent session `n`\n\n## You\n\nhi\n\n## hag-agent\n\nhello\n\n"
        "*task chat, attempt 0: top_k=5*\n"
    )
