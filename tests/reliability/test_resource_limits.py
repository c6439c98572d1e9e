"""Resources at their limits: a conversation past the context, thousands of sessions, a full disk.

- A chat whose conversation outgrows the embedded model's context (``n_ctx`` 256 here): the
  turn that does not fit is a clear error, the turns before it stay, nothing is truncated.
- Thousands of chat sessions in one SQLite file: one real session's checkpoint rows copied under
  3,000 names (what 3,000 one-turn chats would leave), then a session among them resumed by
  ``hag-agent chat`` and answered, and the list of sessions read.
- A full disk, simulated honestly without root: the process runs under ``RLIMIT_FSIZE``, so a
  write past the limit fails with EFBIG as on a full file system (Python ignores SIGXFSZ). The
  chat and ``dataset search`` must stop with a clear error (exit 2), keep what they had
  written whole, and the search must resume to the end once there is room.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from integration.fault_server import FaultServer
from langchain_core.messages import AIMessage, HumanMessage

from hag_agent import HAGRunnable
from hag_agent.cli.main import cli
from hag_agent.sessions import DATABASE_NAME, SessionStore

from .figures import FIGURES
from .test_resources import hag

SESSIONS = 3000


@pytest.fixture(scope="module")
def server() -> Iterator[FaultServer]:
    fault = FaultServer().start()
    yield fault
    fault.stop()


def conversation(data_dir: Path, name: str) -> list[str]:
    """The session's prompts up to its last complete turn; the file must be intact."""
    with sqlite3.connect(data_dir / DATABASE_NAME) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    store = SessionStore(data_dir)
    try:
        graph = HAGRunnable(checkpointer=store.checkpointer).graph
        messages = store.messages(graph, store.head(graph, name))
    finally:
        store.close()
    kinds = [type(m) for m in messages]
    assert kinds == [HumanMessage, AIMessage] * (len(messages) // 2), kinds
    return [str(m.content) for m in messages[::2]]


def endpoint(server: FaultServer) -> dict[str, str]:
    return {"HAG_BACKEND": "vllm", "HAG_BASE_URL": server.base_url, "HAG_MODEL": "m"}


CHAT = ["chat", "--session", "s", "--json", "--proposer", "prior"]


def test_a_conversation_past_the_context_is_a_clear_error(tmp_path: Path) -> None:
    tally = FIGURES["resources, a conversation past n_ctx (embedded, chat)"]
    prompts = [f"Turn {k}: " + "tell me more about apples and pears " * 8 for k in range(6)]
    done = hag(
        [*CHAT, "--param", "max_tokens=4"],
        "".join(f"{p}\n" for p in prompts),
        HAG_DATA_DIR=str(tmp_path),
        HAG_N_CTX="256",
    )
    answered = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    failed = done.stderr.count("does not fit the model's context of 256 tokens")
    assert "Traceback" not in done.stderr and done.returncode == 3, done.stderr[-2000:]
    assert answered and failed and len(answered) + failed == len(prompts), done.stderr
    # the turns before the overflow, whole; nothing of the ones that did not fit
    assert conversation(tmp_path, "s") == prompts[: len(answered)]
    tally["turns answered"] += len(answered)
    tally["turns refused with a clear error"] += failed
    tally["tracebacks"] += 0


def copy_session(connection: sqlite3.Connection, source: str, names: list[str]) -> None:
    """Copy one session's checkpoint rows and its record under other names."""
    for table in ("checkpoints", "writes", "hag_chat_sessions"):
        columns = [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]
        key = "name" if table == "hag_chat_sessions" else "thread_id"
        rest = ", ".join(c for c in columns if c != key)
        connection.executemany(
            f"INSERT INTO {table} ({key}, {rest}) SELECT ?, {rest} FROM {table} WHERE {key} = ?",
            [(name, source) for name in names],
        )
    connection.commit()


def test_thousands_of_sessions(tmp_path: Path, server: FaultServer) -> None:
    tally = FIGURES["resources, thousands of chat sessions (SQLite)"]
    environment = {**endpoint(server), "HAG_DATA_DIR": str(tmp_path)}
    first = CliRunner().invoke(cli, CHAT, input="What is 1 + 1?\n", env=environment)
    assert first.exit_code == 0, first.output
    names = [f"chat-{k:05d}" for k in range(SESSIONS - 1)]
    with sqlite3.connect(tmp_path / DATABASE_NAME) as connection:
        copy_session(connection, "s", names)
    start = time.monotonic()
    resumed = CliRunner().invoke(
        cli, [*CHAT[:2], names[-7], *CHAT[3:]], input="And 2 + 2?\n", env=environment
    )
    tally["resume and answer one turn, ms"] = int((time.monotonic() - start) * 1000)
    assert resumed.exit_code == 0, resumed.output
    assert conversation(tmp_path, names[-7]) == ["What is 1 + 1?", "And 2 + 2?"]
    assert conversation(tmp_path, names[3]) == ["What is 1 + 1?"]
    store = SessionStore(tmp_path)
    try:
        start = time.monotonic()
        listed = store.sessions()
        tally["list every session, ms"] = int((time.monotonic() - start) * 1000)
    finally:
        store.close()
    assert len(listed) == SESSIONS and listed[0].name == names[-7] and listed[0].turns == 2
    tally["sessions"] = len(listed)
    tally["database, KiB"] = (tmp_path / DATABASE_NAME).stat().st_size // 1024


def test_a_full_disk_stops_the_chat_with_a_clear_error(tmp_path: Path, server: FaultServer) -> None:
    tally = FIGURES["resources, a full disk (RLIMIT_FSIZE)"]
    environment = {**endpoint(server), "HAG_DATA_DIR": str(tmp_path)}
    kept = ["First question?", "Second question?"]
    assert hag(CHAT, "".join(f"{p}\n" for p in kept), **environment).returncode == 0
    size = (tmp_path / DATABASE_NAME).stat().st_size
    prompts = [f"Long question {k}: " + "more words here " * 100 for k in range(8)]
    done = hag(CHAT, "".join(f"{p}\n" for p in prompts), limit=size + 24_000, **environment)
    answered = len([line for line in done.stdout.splitlines() if line.strip()])
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert "cannot write the sessions database" in done.stderr, done.stderr
    assert answered < len(prompts)
    # intact, and every turn it printed is there: the refused one is not
    assert conversation(tmp_path, "s") == [*kept, *prompts[:answered]]
    tally["clear errors, exit 2"] += 1
    tally["turns lost"] += 0
    again = hag(CHAT, "Third question?\n", **environment)  # room again: the session goes on
    assert again.returncode == 0, again.stderr
    assert conversation(tmp_path, "s") == [*kept, *prompts[:answered], "Third question?"]


def test_a_full_disk_stops_a_search_which_resumes_later(
    tmp_path: Path, server: FaultServer
) -> None:
    tally = FIGURES["resources, a full disk (RLIMIT_FSIZE)"]
    out = tmp_path / "search.jsonl"
    args = ["dataset", "search", "arithmetic", "--limit", "6", "--budget", "2", "--quiet"]
    args += ["-o", str(out), "--backend", "vllm"]
    environment = {"HAG_BASE_URL": server.base_url, "HAG_MODEL": "m"}
    done = hag(args, limit=3000, **environment)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert "File too large" in done.stderr, done.stderr
    lines = out.read_text(encoding="utf-8").split("\n")
    complete = [json.loads(line) for line in lines[:-1]]  # the last may be cut: never read
    assert len(complete) < 6
    tally["clear errors, exit 2"] += 1
    again = hag(args, **environment)
    assert again.returncode == 0, again.stderr
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert sorted(r["id"] for r in records) == sorted({r["id"] for r in records})
    assert len(records) == 6 and records[: len(complete)] == complete
    tally["records lost"] += 0
