"""``hag-agent chat`` driven through a real pseudo-terminal against the embedded model.

One conversation per test module, in steps: two turns, a pin and /params, /trace, /graph, a bad
command, Ctrl-C during generation, then the process is killed (SIGKILL) and a second process
resumes the session from disk.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

PROMPT = re.compile(r"you>(?:\x1b\[[\d;]*m)* ")  # the prompt, whatever styles wrap it
ANSI = re.compile(r"\x1b\[[\d;?]*[A-Za-z]")
SCRIPT = str(Path(sys.executable).with_name("hag-agent"))


def spawn(data_dir: Path, *args: str) -> pexpect.spawn:
    env = {**os.environ, "HAG_DATA_DIR": str(data_dir), "TERM": "xterm-256color"}
    child = pexpect.spawn(
        SCRIPT,
        ["chat", "--seed", "3", *args],
        env=env,
        encoding="utf-8",
        timeout=120,
        dimensions=(60, 140),
        # Started as a shell's background job is (`cmd &`): with SIGINT ignored. The chat must
        # restore it itself, or the Ctrl-C test below finds no KeyboardInterrupt.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    child.expect(PROMPT)
    return child


def shown_until_prompt(child: pexpect.spawn) -> str:
    """What the terminal showed up to the next prompt, without colour and cursor codes."""
    child.expect(PROMPT)
    return ANSI.sub("", child.before)


def command(child: pexpect.spawn, text: str) -> str:
    """Send a line (a prompt or a slash command); return what it showed."""
    child.sendline(text)
    return shown_until_prompt(child)


ask = command


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chat-data")


@pytest.fixture(scope="module")
def first_process(data_dir: Path) -> Iterator[pexpect.spawn]:
    # Short answers keep the test quick; the Ctrl-C step lifts the cap for a long one.
    child = spawn(data_dir, "--session", "pty", "--param", "max_tokens=48")
    yield child
    child.terminate(force=True)


def test_two_turns_stream_with_a_panel_each(first_process: pexpect.spawn) -> None:
    assert "retries: 1" in command(first_process, "/retries 1")
    shown = ask(first_process, "What is 12 * 3?")
    assert "max 48 pinned" in shown
    assert "task math" in shown and re.search(r"· [12] attempts?", shown)
    assert re.search(r"temp [\d.]+ (model|prior|retry)", shown)  # each value with its source
    assert re.search(r"\d+ tok", shown) and re.search(r"[\d.]+ s", shown)
    shown = ask(first_process, "Translate 'good morning' into French.")
    assert "task translation" in shown


def test_set_then_params_and_the_pin_reaches_the_next_turn(first_process: pexpect.spawn) -> None:
    assert "pinned top_k=5" in command(first_process, "/set top_k=5")
    shown = command(first_process, "/params")
    assert "top_k=5" in shown and "last answer used" in shown
    shown = ask(first_process, "Name a colour.")
    assert "top_k 5 pinned" in shown


def test_trace_and_graph_show_the_last_turn(first_process: pexpect.spawn) -> None:
    shown = command(first_process, "/trace")
    assert "attempt 0" in shown and "decisions" in shown and "classify:" in shown
    shown = command(first_process, "/graph")
    assert "classify" in shown and "◄" in shown and "┃" in shown  # the path, drawn heavy


def test_bad_commands_get_help_not_a_traceback(first_process: pexpect.spawn) -> None:
    shown = command(first_process, "/grpah")
    assert "did you mean /graph" in shown
    shown = command(first_process, "/set temperature=9")
    assert "temperature" in shown and "[0, 2]" in shown
    shown = command(first_process, "/set colour=blue")
    assert "unknown hyperparameter" in shown
    shown = command(first_process, "/retries")
    assert "usage: /retries N" in shown
    assert "Traceback" not in shown


def test_ctrl_c_cancels_generation_and_keeps_the_session(first_process: pexpect.spawn) -> None:
    command(first_process, "/unset top_k")
    command(first_process, "/set max_tokens=400")
    first_process.sendline("Write a very long story about a dragon who learns to sing.")
    first_process.expect(r"generating")  # the proposal is done; the answer is being written
    first_process.sendcontrol("c")
    assert "cancelled" in shown_until_prompt(first_process)
    command(first_process, "/set max_tokens=48")
    shown = ask(first_process, "What is 2 + 2?")
    assert "task math" in shown


def test_killed_process_loses_nothing_and_a_new_one_resumes(
    first_process: pexpect.spawn, data_dir: Path, tmp_path: Path
) -> None:
    first_process.kill(9)  # no clean exit: what was answered must already be on disk
    first_process.wait()
    second = spawn(data_dir, "--session", "pty")
    try:
        opening = ANSI.sub("", second.before)
        assert "resumed session pty: 4 turn(s)" in opening
        assert "What is 2 + 2?" in opening  # the last exchange is shown
        transcript = tmp_path / "t.md"
        command(second, f"/save {transcript}")
        text = transcript.read_text(encoding="utf-8")
        assert text.count("## You") == 4
        for asked in ("What is 12 * 3?", "good morning", "Name a colour.", "What is 2 + 2?"):
            assert asked in text
        assert "dragon" not in text  # the cancelled turn was never kept
        assert "top_k=5" in text  # each answer with its params
        shown = command(second, "/sessions")
        assert re.search(r"pty \(this one\)\s+4\s", shown), shown
        second.sendeof()  # Ctrl-D leaves
        second.expect(pexpect.EOF)
        second.wait()
        assert second.exitstatus == 0
    finally:
        second.terminate(force=True)


def test_piped_input_prints_plain_answers(tmp_path: Path) -> None:
    done = subprocess.run(
        [SCRIPT, "chat", "--session", "piped", "--seed", "1", "--json", "--param", "max_tokens=48"],
        input="What is 5 + 7?\n/set top_k=5\n/bogus\n\nSay hello.\n",
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HAG_DATA_DIR": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr
    turns = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(turns) == 2 and turns[0]["task"] == "math"
    assert turns[1]["params"]["top_k"] == 5
    assert "unknown command /bogus" in done.stderr and "Traceback" not in done.stderr
    assert "\x1b" not in done.stdout
