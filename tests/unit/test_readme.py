"""The README's first screen keeps exactly two set-up commands, and they stay true."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def first_screen() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return text.split("\n## ", 1)[0]


def test_exactly_two_setup_commands() -> None:
    commands = [
        line.strip()
        for line in first_screen().splitlines()
        if line.startswith("    python3 -m venv")
    ]
    assert len(commands) == 2
    run, test = commands
    assert "pip install -e '.[embedded]'" in run and "hag-agent run" in run
    assert "pip install -e '.[dev]'" in test and test.endswith("pytest")


def test_the_extras_they_name_exist() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    assert {"embedded", "dev", "viz", "train"} <= set(extras)
    assert any("llama-cpp-python" in d for d in extras["embedded"])
    assert project["scripts"]["hag-agent"] == "hag_agent.cli:main"
