"""Crashes: ``hag-agent chat`` killed (SIGKILL) at random moments, over and over, one session.

Each run resumes session ``crash``, is fed numbered prompts on a pipe, and is killed after a
random delay drawn from a fixed seed: while it starts, or after its first answer, mid-turn or
between turns. After
each kill the SQLite file must pass its integrity check, every turn the process printed (it
prints a turn only once it is on disk) must be in the conversation, nothing of a turn may be
half there, and the next run must go on from the last complete turn.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from langchain_core.messages import AIMessage, HumanMessage

from hag_agent import HAGRunnable
from hag_agent.sessions import DATABASE_NAME, SessionStore

from .figures import FIGURES

RUNS = 20
SESSION = "crash"
DELAYS = random.Random(15)


def chat_run(
    data_dir: Path, run: int, delay: float, *, after_first_turn: bool, prompts: int = 4
) -> list[str]:
    """One chat process killed ``delay`` seconds after its start or its first answered turn.

    Returns:
        The prompts it printed as answered, in order.
    """
    questions = [f"Run {run} question {k}: what is {run} + {k}?" for k in range(prompts)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HAG_", "OPENAI_"))}
    env.update(HAG_DATA_DIR=str(data_dir), HAG_N_THREADS="1", HAG_N_THREADS_BATCH="1")
    command = [sys.executable, "-m", "hag_agent.cli", "chat", "--session", SESSION, "--json"]
    process = subprocess.Popen(
        [*command, "--seed", "1", "--param", "max_tokens=12", "--proposer", "prior"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
        # stdin stays open: the process never ends on its own, only by the kill
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert process.stdin is not None and process.stdout is not None
    watchdog = threading.Timer(180, process.kill)  # a hung chat fails the test, not CI
    watchdog.start()
    process.stdin.write("".join(f"{q}\n" for q in questions))
    process.stdin.flush()
    if not questions:  # only open the session, and leave
        process.stdin.close()
        assert process.wait(timeout=120) == 0
        watchdog.cancel()
        process.stdout.close()
        return []
    lines = [process.stdout.readline()] if after_first_turn else []
    time.sleep(delay)
    process.kill()
    process.wait()
    watchdog.cancel()
    lines += process.stdout.read().splitlines()
    printed = [json.loads(line) for line in lines if line.strip()]
    process.stdin.close()
    process.stdout.close()
    return questions[: len(printed)]


def stored(data_dir: Path) -> tuple[list[str], int]:
    """The human prompts of the session's last complete turn, and its recorded turn count."""
    database = data_dir / DATABASE_NAME
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    store = SessionStore(data_dir)
    try:
        graph = HAGRunnable(checkpointer=store.checkpointer).graph
        messages = store.messages(graph, store.head(graph, SESSION))
        info = {s.name: s.turns for s in store.sessions()}
    finally:
        store.close()
    kinds = [type(m) for m in messages]
    # whole turns only: question, answer, question, answer ...
    assert kinds == [HumanMessage, AIMessage] * (len(messages) // 2), kinds
    return [str(m.content) for m in messages[::2]], info.get(SESSION, 0)


def test_killed_chats_lose_no_turn_and_resume_from_the_last(tmp_path: Path) -> None:
    tally = FIGURES["crashes, hag-agent chat (kill -9)"]
    history: list[str] = []
    for run in range(RUNS):
        # one run in four dies while starting (loading the model, opening the database);
        # the others within the next turns after a first answer, about a second each here
        starting = run % 4 == 0
        delay = DELAYS.uniform(0.0, 4.0 if starting else 2.5)
        printed = chat_run(tmp_path, run, delay, after_first_turn=not starting)
        tally["runs"] += 1
        if not (tmp_path / DATABASE_NAME).exists():
            assert printed == []  # killed before the database was created
            tally["killed before the database existed"] += 1
            continue
        kept, counted = stored(tmp_path)
        assert kept[: len(history)] == history, "an earlier turn changed or went missing"
        new = kept[len(history) :]
        # every printed turn is kept; one more may be on disk that had no time to print
        assert new[: len(printed)] == printed, (run, delay, printed, new)
        assert len(new) - len(printed) in (0, 1), (run, delay, printed, new)
        tally["turns printed"] += len(printed)
        tally["turns kept but not printed"] += len(new) - len(printed)
        # the /sessions count is written just after the turn's checkpoint: one behind at most
        assert len(kept) - counted in (0, 1), (run, counted, len(kept))
        tally["turn counter one behind right after the kill"] += counted != len(kept)
        history = kept
    assert len(history) >= RUNS // 2, "too few turns completed to say anything"
    # a clean start of the session sets the count right
    assert chat_run(tmp_path, RUNS, 0.0, after_first_turn=False, prompts=0) == []
    assert stored(tmp_path) == (history, len(history))
