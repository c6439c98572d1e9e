"""``hag.session`` over real HTTP: ``hag-agent serve`` processes on 127.0.0.1 keeping sessions
in a real SQLite file, continued by a restarted server and by ``hag-agent chat``."""

from __future__ import annotations

import threading
from pathlib import Path

import openai
import pytest

from hag_agent.runnable import HAGRunnable
from hag_agent.sessions import SessionStore

from .fault_server import FaultServer
from .sessions_servers import chat_turn, echo, say, sessions_server


def stored(directory: Path, name: str = "s1") -> list[str]:
    store = SessionStore(directory)
    try:
        graph = HAGRunnable(checkpointer=store.checkpointer).graph
        return [m.text for m in store.messages(graph, store.head(graph, name))]
    finally:
        store.close()


def test_a_session_over_http_survives_a_restart_and_the_chat_continues_it(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    fault_server.reply = echo
    directory = tmp_path / "sessions"
    server = sessions_server(tmp_path, fault_server, str(directory))
    try:
        assert f"conversations are kept in {directory / 'sessions.sqlite'}" in server.log_tail()
        assert say(server, "one") == "one (seen 1)"
        assert say(server, "two", stream=False) == "two (seen 3)"
        stream = openai.OpenAI(
            base_url=f"{server.base_url}/v1", api_key="none", max_retries=0
        ).chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "three"}],
            extra_body={"hag": {"session": "s1"}},
            stream=True,
        )
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert text.strip() == "three (seen 5)"
    finally:
        server.stop()
    again = sessions_server(tmp_path, fault_server, str(directory), log="again.log")
    try:
        assert say(again, "four") == "four (seen 7)"
    finally:
        again.stop()
    answer = chat_turn(fault_server, "s1", "five", "--sessions", str(directory))
    assert answer == "five (seen 9)"
    assert stored(directory)[::2] == ["one", "two", "three", "four", "five"]


def test_a_busy_session_is_409_and_the_sdk_retry_gets_through(
    fault_server: FaultServer, tmp_path: Path
) -> None:
    fault_server.reply = echo
    fault_server.slow_seconds = 2.0
    server = sessions_server(tmp_path, fault_server, str(tmp_path / "sessions"))
    try:
        fault_server.reset(["slow", "ok"])
        first: list[str] = []
        running = threading.Thread(target=lambda: first.append(say(server, "slow one")))
        running.start()
        while not fault_server.requests:  # the slow turn has reached the upstream
            threading.Event().wait(0.05)
        with pytest.raises(openai.ConflictError) as busy:
            say(server, "meanwhile")
        assert busy.value.response.headers["retry-after"] == "1"
        # The SDK retries a 409 after Retry-After: it gets in once the first turn is done.
        assert say(server, "after", retries=5) == "after (seen 3)"
        running.join(timeout=30)
        assert first == ["slow one (seen 1)"]
    finally:
        server.stop()
    assert stored(tmp_path / "sessions")[::2] == ["slow one", "after"]
