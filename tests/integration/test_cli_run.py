"""``hag-agent run`` through its real entry point, on the embedded default."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .fault_server import FaultServer


def hag(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("hag-agent")
    return subprocess.run(
        [str(script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        input=stdin,
        env={**os.environ, **(env or {})},
    )


def test_run_prints_an_answer() -> None:
    done = hag("run", "What is the capital of France?", "--seed", "1", "--param", "max_tokens=40")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
    assert "\x1b" not in done.stderr  # no spinner when stderr is not a terminal


def test_run_json_has_the_whole_result() -> None:
    done = hag(
        "run",
        "What is 3 + 4?",
        "--json",
        "--seed",
        "2",
        "--param",
        "max_tokens=32",
        "--param",
        "top_k=5",
        "--max-retries",
        "0",
        "--task",
        "math",
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert set(data) == {
        "answer",
        "task",
        "params",
        "best_attempt",
        "stop_reason",
        "attempts",
        "trace",
    }
    assert data["task"] == "math"
    attempt = data["attempts"][0]
    assert attempt["params"]["max_tokens"] == 32 and attempt["params"]["top_k"] == 5
    assert attempt["sources"]["max_tokens"] == "pinned" and attempt["sources"]["top_k"] == "pinned"
    assert data["answer"] == attempt["output"]


def test_run_trace_shows_the_table() -> None:
    done = hag(
        "run",
        "Name a colour.",
        "--trace",
        "--proposer",
        "prior",
        "--no-critique",
        "--param",
        "max_tokens=16",
        "--seed",
        "1",
    )
    assert done.returncode == 0, done.stderr
    assert "task: chat" in done.stdout and "prior" in done.stdout and "propose" in done.stdout


def test_run_reads_stdin() -> None:
    done = hag("run", "-", "--param", "max_tokens=16", "--no-critique", stdin="Say hello.\n")
    assert done.returncode == 0 and done.stdout.strip()


def test_bad_input_exits_2() -> None:
    for args in (
        ["run", "   "],
        ["run", "hi", "--param", "temperature=50"],
        ["run", "hi", "--param", "oops"],
        ["run", "hi", "--task", "poetry"],
        ["run", "hi", "--param", "top_q=1"],
    ):
        done = hag(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert "Traceback" not in done.stderr
    assert "temperature" in hag("run", "hi", "--param", "temperature=50").stderr


def test_backend_failure_exits_3(fault_server: FaultServer) -> None:
    fault_server.reset(["500"])
    done = hag(
        "run",
        "hi",
        "--base-url",
        fault_server.base_url,
        "--model",
        "m",
        env={"HAG_MAX_TRIES": "2", "HAG_DEADLINE": "5"},
    )
    assert done.returncode == 3
    assert "HTTP 500" in done.stderr and "Traceback" not in done.stderr


def test_run_against_an_endpoint(fault_server: FaultServer) -> None:
    done = hag(
        "run",
        "What is 2+2?",
        "--base-url",
        fault_server.base_url,
        "--model",
        "base",
        "--proposer-model",
        "hag",
        "--param",
        "max_tokens=20",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "The answer is 4."
    models = [r.body["model"] for r in fault_server.requests]
    assert models == ["hag", "base"]  # the proposal, then the answer


def test_spinner_only_on_a_terminal() -> None:
    """Under a pseudo-terminal the spinner shows on stderr; piped (above) it does not."""
    import shutil

    script = shutil.which("script")
    if script is None:
        import pytest

        pytest.skip("util-linux `script` is not installed")
    command = f"{Path(sys.executable).with_name('hag-agent')} run 'Say hi.' --param max_tokens=24 --no-critique"
    done = subprocess.run(
        [script, "-qec", command, "/dev/null"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout
    assert "thinking about how to answer" in done.stdout
