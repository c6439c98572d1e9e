"""Sessions in a real PostgreSQL: one session continued across two ``hag-agent serve``
processes and ``hag-agent chat``, and servers killed (``kill -9``) in the middle of turns
without losing a turn a client saw complete (the target of issue 16, item 4)."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from hag_agent.dev.server_process import ServerProcess
from hag_agent.runnable import HAGRunnable
from hag_agent.sessions import SessionStore

from .fault_server import FaultServer
from .postgres_process import running_postgres
from .sessions_servers import chat_turn, echo, say, sessions_server

KILLS = 3


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with running_postgres() as url:
        yield url


def stored(url: str, name: str) -> tuple[list[str], list[str], int]:
    """The session's user texts, its answers, and the turns our table recorded."""
    store = SessionStore(url)
    try:
        graph = HAGRunnable(checkpointer=store.checkpointer).graph
        messages = store.messages(graph, store.head(graph, name))
        turns = {s.name: s.turns for s in store.sessions()}.get(name, 0)
    finally:
        store.close()
    assert [m.type for m in messages] == ["human", "ai"] * (len(messages) // 2)
    return [m.text for m in messages[::2]], [m.text.strip() for m in messages[1::2]], turns


def test_one_session_across_two_servers_and_the_chat(
    postgres_url: str, fault_server: FaultServer, tmp_path: Path
) -> None:
    fault_server.reply = echo
    a = sessions_server(tmp_path, fault_server, postgres_url, log="a.log")
    b = sessions_server(tmp_path, fault_server, postgres_url, log="b.log")
    try:
        assert say(a, "one", session="shared") == "one (seen 1)"
        assert say(b, "two", session="shared") == "two (seen 3)"
        assert say(a, "three", session="shared") == "three (seen 5)"
        assert say(b, "elsewhere", session="other") == "elsewhere (seen 1)"
    finally:
        a.stop()
        b.stop()
    # $HAG_SESSIONS_URL instead of --sessions
    answer = chat_turn(fault_server, "shared", "four", env={"HAG_SESSIONS_URL": postgres_url})
    assert answer == "four (seen 7)"
    assert stored(postgres_url, "shared") == (
        ["one", "two", "three", "four"],
        ["one (seen 1)", "two (seen 3)", "three (seen 5)", "four (seen 7)"],
        4,
    )


def kill_mid_turn(server: ServerProcess, fault_server: FaultServer, prompt: str) -> str:
    """Send ``prompt`` to ``server``, and ``kill -9`` it while the upstream answers."""
    fault_server.reset(["slow", "ok"])
    outcome: list[str] = []

    def ask() -> None:
        try:
            outcome.append(say(server, prompt, session="killed"))
        except openai.APIConnectionError:
            outcome.append("connection lost")

    asking = threading.Thread(target=ask)
    asking.start()
    while not fault_server.requests:  # the turn is running: its upstream call has started
        threading.Event().wait(0.02)
    os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait()
    asking.join(timeout=30)
    return outcome[0]


def test_kill_9_mid_turn_loses_no_completed_turn(
    postgres_url: str, fault_server: FaultServer, tmp_path: Path
) -> None:
    fault_server.reply = echo
    fault_server.slow_seconds = 3.0
    a = sessions_server(tmp_path, fault_server, postgres_url, log="a0.log")
    b = sessions_server(tmp_path, fault_server, postgres_url, log="b.log")
    completed: list[str] = []  # the prompts whose answers the client received, in order
    try:
        for kill in range(KILLS):  # the first kill is in the session's very first turn
            prompt = f"killed{kill}"
            assert kill_mid_turn(a, fault_server, prompt) == "connection lost"
            # The other server takes the same turn at once: the dead one's lock went with it
            # (the SDK's retries cover the moment PostgreSQL takes to see the connection go).
            answer = say(b, prompt, session="killed", retries=3)
            assert answer == f"{prompt} (seen {2 * len(completed) + 1})"
            completed.append(prompt)
            a = sessions_server(tmp_path, fault_server, postgres_url, log=f"a{kill + 1}.log")
            for server, prompt in ((a, f"a{kill}"), (b, f"b{kill}")):
                answer = say(server, prompt, session="killed")
                assert answer == f"{prompt} (seen {2 * len(completed) + 1})"
                completed.append(prompt)
    finally:
        a.stop()
        b.stop()
    prompts, answers, turns = stored(postgres_url, "killed")
    assert prompts == completed  # every completed turn, once, in order; no half turn
    assert turns == len(completed) == 3 * KILLS
    assert answers[-1] == f"b{KILLS - 1} (seen {2 * len(completed) - 1})"
