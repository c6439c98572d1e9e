"""Crashes of the long jobs: ``hag-agent eval`` and ``dataset search`` killed (SIGKILL) mid-run.

Each job runs against the fault server (every answer a little slow, so a run takes seconds),
is killed at random moments a few times, then rerun to the end. After each kill every complete
line of its JSONL file must read back and no unit may be there twice; the finished rerun must
hold every unit exactly once, with every line written before it unchanged.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from integration.fault_server import FaultServer

from .figures import FIGURES

KILLS = 4
DELAYS = random.Random(4)


@pytest.fixture
def server() -> Iterator[FaultServer]:
    fault = FaultServer(script=["slow"], slow_seconds=0.05).start()
    yield fault
    fault.stop()


def job_command(job: str, out: Path) -> tuple[list[str], Path, int]:
    """The command line, the JSONL file it appends to, and how many units it writes."""
    if job == "eval":
        args = ["eval", "--suite", "arithmetic", "--limit", "10", "--proposers", "prior,default"]
        args += ["--out", str(out), "--no-chart", "--quiet"]
        return args, out / "rows.jsonl", 20
    args = ["dataset", "search", "arithmetic", "--limit", "8", "--budget", "4", "--quiet"]
    return [*args, "-o", str(out / "search.jsonl")], out / "search.jsonl", 8


def unit_key(job: str, line: str) -> str:
    record = json.loads(line)
    return (
        f"{record['case_id']}/{record['proposer']}/{record['seed']}"
        if job == "eval"
        else record["id"]
    )


def complete_lines(path: Path) -> list[str]:
    """The file's complete lines (a partial last one, cut by the kill, is not one)."""
    if not path.exists():
        return []
    return path.read_text(encoding="utf-8").split("\n")[:-1]


def start(args: list[str], server: FaultServer) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HAG_", "OPENAI_"))}
    env.update(HAG_BASE_URL=server.base_url, HAG_MODEL="tiny")
    return subprocess.Popen(
        [sys.executable, "-m", "hag_agent.cli", *args, "--backend", "vllm"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_for_lines(path: Path, process: subprocess.Popen[bytes], count: int) -> None:
    deadline = time.monotonic() + 120
    while len(complete_lines(path)) < count and process.poll() is None:
        assert time.monotonic() < deadline, "the job wrote nothing for two minutes"
        time.sleep(0.05)


@pytest.mark.parametrize("job", ["eval", "search"])
def test_a_killed_job_resumes_exactly_where_it_stopped(
    job: str, server: FaultServer, tmp_path: Path
) -> None:
    args, path, units = job_command(job, tmp_path)
    tally = FIGURES[f"crashes, {job} (kill -9)"]
    kept: list[str] = []
    for _ in range(KILLS):
        process = start(args, server)
        wait_for_lines(path, process, len(kept) + 1)  # killed mid-run, not while starting
        time.sleep(DELAYS.uniform(0.0, 0.6))
        process.kill()
        process.wait()
        lines = complete_lines(path)
        keys = [unit_key(job, line) for line in lines if line.strip()]
        assert lines[: len(kept)] == kept, "a line written before the kill changed"
        assert len(keys) == len(set(keys)), "a unit was written twice"
        tally["kills"] += 1
        tally["partial last lines"] += not path.read_text(encoding="utf-8").endswith("\n")
        kept = lines
    done = start(args, server)
    assert done.wait(timeout=300) == 0, done.stderr.read() if done.stderr else ""
    lines = complete_lines(path)
    keys = [unit_key(job, line) for line in lines if line.strip()]
    assert lines[: len(kept)] == kept
    assert len(keys) == len(set(keys)) == units, (len(keys), len(set(keys)), units)
    tally["units before the last run"] += len([k for k in kept if k.strip()])
    tally["units in the end"] += len(keys)
