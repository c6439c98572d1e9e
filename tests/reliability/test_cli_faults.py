"""Transport faults on the command line: exit code 3 naming the cause, and a chat keeps whole turns.

``hag-agent run`` meets every fault of `test_transport_faults` for good (and a port with nothing
listening): it must exit 3 with ``backend error: ...`` naming the cause, no traceback, within the
deadline. These run in process, through click's test runner and the command line's own error
handling (a process each costs seconds of imports on a busy machine); one more runs as a real
process. ``hag-agent chat`` (which streams; a real process) meets faults between good turns: the
failed turns are reported, the good ones kept, and the session on disk holds whole turns only,
none of the failed ones, and goes on from the last good turn when reopened.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from integration.fault_server import FaultServer, fault_tag

from hag_agent.cli.main import cli
from hag_agent.dev.server_process import free_port

from .figures import FIGURES
from .test_resource_limits import conversation
from .test_transport_faults import FAULTS

TIMEOUT = 0.3
DEADLINE = 1.0
"""Shorter than the library's: the runs here go one at a time, and the tier's time counts."""

SLACK = 1.5
"""What a command may take past the deadline: building the run, a busy machine."""
ENVIRONMENT = {"HAG_BACKEND": "vllm", "HAG_MODEL": "m", "HAG_MAX_TRIES": "3"}
ENVIRONMENT |= {"HAG_TIMEOUT": str(TIMEOUT), "HAG_DEADLINE": str(DEADLINE)}
OPTIONS = ["--proposer", "prior"]


@pytest.fixture(scope="module")
def server() -> Iterator[FaultServer]:
    fault = FaultServer(slow_seconds=3.0, trickle_seconds=0.2).start()
    yield fault
    fault.stop()


def hag(base_url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """The real ``hag-agent`` as a process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HAG_", "OPENAI_"))}
    env.update(ENVIRONMENT, HAG_BASE_URL=base_url)
    command = [sys.executable, "-m", "hag_agent.cli", *args, *OPTIONS]
    return subprocess.run(
        command, capture_output=True, text=True, env=env, input=stdin, timeout=180
    )


def hag_in_process(base_url: str, *args: str) -> Result:
    """``hag-agent`` through click's test runner: the same commands and error handling."""
    env = {**ENVIRONMENT, "HAG_BASE_URL": base_url}
    return CliRunner().invoke(cli, [*args, *OPTIONS], env=env)


def test_run_exits_3_naming_the_cause(server: FaultServer) -> None:
    tally = FIGURES["transport faults, hag-agent run"]
    refused = f"http://127.0.0.1:{free_port()}/v1"
    cases = [(f.name, f.cause, server.base_url) for f in FAULTS]
    cases.append(("refused", r"unreachable after \d tr", refused))
    for name, cause, base_url in cases:
        start = time.monotonic()
        prompt = f"What is 2 + 2? {fault_tag(name, f'run.{name}')}"
        done = hag_in_process(base_url, "run", prompt, "--no-critique")
        seconds = time.monotonic() - start
        tally["faults injected"] += 1
        assert done.exit_code == 3, (name, done.exit_code, done.output[-2000:], done.exception)
        assert done.stderr.startswith("backend error: "), (name, done.stderr[-2000:])
        assert re.search(cause, done.stderr), (name, done.stderr)
        assert "Traceback" not in done.stderr and done.stdout == "", name
        assert seconds <= DEADLINE + SLACK, (name, seconds)
        tally["exit 3 naming the cause"] += 1
        tally["slowest, ms"] = max(tally["slowest, ms"], int(seconds * 1000))
    tally["deadline, ms"] = int(DEADLINE * 1000)
    # and once as a real process: the console script's own exit code
    prompt = f"What is 2 + 2? {fault_tag('midreset', 'run.process')}"
    done = hag(server.base_url, "run", prompt, "--no-critique")
    assert done.returncode == 3 and done.stderr.startswith("backend error: "), done.stderr
    assert "reset by peer" in done.stderr and "Traceback" not in done.stderr
    tally["faults injected"] += 1
    tally["exit 3 naming the cause"] += 1


PROMPTS = [
    ("Question 0: what is 1 + 1?", None),
    ("Question 1: what is 1 + 2?", ("midreset", 1)),  # broke mid-stream: not retried
    ("Question 2: what is 1 + 3?", None),
    ("Question 3: what is 1 + 4?", ("truncated", 1)),  # the stream ended without [DONE]
    ("Question 4: what is 1 + 5?", ("500", None)),
    ("Question 5: what is 1 + 6?", ("endless", None)),
    ("Question 6: what is 1 + 7?", ("reset", 1)),  # before the answer: retried, answered
    ("Question 7: what is 1 + 8?", None),
]


def test_chat_keeps_whole_turns_only(server: FaultServer, tmp_path: Path) -> None:
    tally = FIGURES["transport faults, hag-agent chat session"]
    lines = []
    for number, (prompt, fault) in enumerate(PROMPTS):
        tag = f" {fault_tag(fault[0], f'chat{number}', fault[1])}" if fault else ""
        lines.append(prompt + tag)
    chat = ["chat", "--session", "faults", "--json", "--data-dir", str(tmp_path)]
    done = hag(server.base_url, *chat, stdin="".join(f"{line}\n" for line in lines))
    answered = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    expected = [line for line, (_, fault) in zip(lines, PROMPTS, strict=True) if fault is None]
    expected.insert(2, lines[6])  # the reset before an answer was retried
    tally["faults injected"] += 5
    assert done.returncode == 3, done.stderr  # some turns failed
    assert done.stderr.count("backend error: ") == 4, done.stderr
    assert "Traceback" not in done.stderr
    assert "not retried" in done.stderr and "without [DONE]" in done.stderr
    tally["turns failed with a typed error"] += done.stderr.count("backend error: ")
    assert len(answered) == 4 and all(a["answer"].strip() for a in answered)
    kept = conversation(tmp_path, "faults")
    assert kept == expected, kept
    tally["turns answered and kept"] += len(kept)
    # reopened, the session goes on from its last good turn
    again = CliRunner().invoke(
        cli,
        [*chat, *OPTIONS],
        input="Question 8: what is 1 + 9?\n",
        env={**ENVIRONMENT, "HAG_BASE_URL": server.base_url},
    )
    assert again.exit_code == 0, again.output
    assert conversation(tmp_path, "faults") == [*kept, "Question 8: what is 1 + 9?"]
    tally["half-written turns"] += 0
