"""Regenerate the screenshots in docs/ on the embedded default (needs tmux; ~1 minute).

    python docs/make_screenshots.py

Makes chat.svg (a real `hag-agent chat` session in tmux, captured with its colours), run.json
(a run's trace from `hag-agent run --trace-out`), run-trace.png (that run's path through the
graph) and run-trace.svg (the same run's `hag-agent graph --trace` in the terminal).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.text import Text

DOCS = Path(__file__).resolve().parent
HAG = str(Path(sys.executable).with_name("hag-agent"))
WIDTH, HEIGHT = 118, 60


def tmux(*args: str) -> str:
    return subprocess.run(
        ["tmux", "-L", "hag-docs", *args], capture_output=True, text=True, check=True
    ).stdout


def wait_for_prompt(count: int, timeout: float = 180) -> None:
    """Wait until the pane shows ``count`` prompts (each turn or command ends with one)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if tmux("capture-pane", "-p", "-t", "docs").count("you>") >= count:
            return
        time.sleep(0.5)
    raise TimeoutError(f"no prompt #{count} in {timeout} s")


def save_terminal(ansi: str, target: Path, title: str) -> None:
    console = Console(record=True, width=WIDTH, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(Text.from_ansi(ansi.rstrip() + "\n"))
    console.save_svg(str(target), title=title)
    print(f"wrote {target}")


def chat_screenshot() -> None:
    data_dir = tempfile.mkdtemp(prefix="hag-docs-")
    command = f"HAG_DATA_DIR={data_dir} {HAG} chat --session demo --seed 7 --param max_tokens=120"
    tmux("new-session", "-d", "-s", "docs", "-x", str(WIDTH), "-y", str(HEIGHT), command)
    try:
        steps = [
            "What is 17 * 23?",
            "Write a two-line poem about the sea.",
            "/set temperature=0.2",
            "/trace",
        ]
        wait_for_prompt(1)
        for number, step in enumerate(steps, start=2):
            tmux("send-keys", "-t", "docs", step, "Enter")
            wait_for_prompt(number)
        ansi = tmux("capture-pane", "-p", "-e", "-t", "docs", "-S", "-200")
    finally:
        tmux("kill-server")
        shutil.rmtree(data_dir, ignore_errors=True)
    save_terminal(ansi, DOCS / "chat.svg", "hag-agent chat")


def run_trace_screenshots() -> None:
    run = DOCS / "run.json"
    subprocess.run(
        [HAG, "run", "Write a limerick about a cat", "--seed", "7", "--trace-out", str(run)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    subprocess.run(
        [HAG, "graph", "--trace", str(run), "-o", str(DOCS / "run-trace.png")], check=True
    )
    shown = subprocess.run(
        [HAG, "graph", "--trace", str(run)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "FORCE_COLOR": "1", "COLUMNS": str(WIDTH)},
    ).stdout
    save_terminal(shown, DOCS / "run-trace.svg", "hag-agent graph --trace run.json")


if __name__ == "__main__":
    chat_screenshot()
    run_trace_screenshots()
