"""The console script through its real entry point."""

import subprocess
import sys
from pathlib import Path

import pytest

from hag_agent.visualization.mermaid_text import to_mermaid
from hag_agent.visualization.topology import graph_shape


def hag(*args: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("hag-agent")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "hag_agent.cli"]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=60)


def test_version_and_help() -> None:
    assert "0.1.0" in hag("--version").stdout
    out = hag("--help").stdout
    assert "Hyperparameter Aware Generation" in out and "graph" in out


def test_graph_prints_mermaid() -> None:
    done = hag("graph", "--format", "mermaid")
    assert done.returncode == 0 and done.stdout == to_mermaid(graph_shape())


def test_graph_draws_the_loop_in_the_terminal_by_default() -> None:
    done = hag("graph")
    assert done.returncode == 0
    assert "retry" in done.stdout and "new params" in done.stdout and "◄" in done.stdout


def test_graph_check_detects_drift(tmp_path: Path) -> None:
    target = tmp_path / "g.mmd"
    assert hag("graph", "-o", str(target)).returncode == 0
    assert hag("graph", "--check", "-o", str(target)).returncode == 0
    target.write_text("graph TD; a --> b", encoding="utf-8")
    done = hag("graph", "--check", "-o", str(target))
    assert done.returncode == 1 and "out of date" in done.stderr


@pytest.mark.parametrize("args", [["bogus"], ["graph", "--format", "gif"]])
def test_bad_usage_exits_2_without_traceback(args: list[str]) -> None:
    done = hag(*args)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
