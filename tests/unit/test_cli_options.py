"""The shared option builders: kinds of option, and option groups a command gets as one value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from click.testing import CliRunner

from hag_agent.cli.backend_options import (
    backend_options,
    backend_settings,
    strategy_options,
    strategy_settings,
)
from hag_agent.cli.option_kinds import defaulted_option, file_option, folder_option


def test_backend_and_strategy_options_reach_the_command_as_their_settings() -> None:
    received: dict[str, Any] = {}

    @click.command()
    @click.option("--name")
    @backend_options
    @strategy_options
    def command(**values: Any) -> None:
        received.update(values)

    args = ["--name", "n", "--base-url", "http://h/v1", "--model", "m", "--head", "h.npz"]
    result = CliRunner().invoke(command, [*args, "--seed", "4"])
    assert result.exit_code == 0, result.output
    assert set(received) == {"name", "backend_choice", "strategy"}
    assert received["name"] == "n"
    assert received["backend_choice"] == backend_settings(None, "http://h/v1", "m", None, None)
    assert received["backend_choice"]["backend"] == "vllm"
    assert received["strategy"] == strategy_settings(4, None, None, None, "h.npz")
    # The head alone makes the run's proposer `learned` (`proposer_for`), not the CLI.
    assert received["strategy"]["head_path"] == "h.npz" and received["strategy"]["proposer"] is None


def test_option_kinds(tmp_path: Path) -> None:
    received: dict[str, Any] = {}

    @click.command()
    @file_option("--data", required=True, help="A file.")
    @folder_option("--out", help="A folder.")
    @defaulted_option("--count", default=3, help="How many.")
    def command(**values: Any) -> None:
        received.update(values)

    runner = CliRunner()
    help_text = runner.invoke(command, ["--help"], terminal_width=100).output
    assert "[default: 3]" in help_text and "[required]" in help_text
    given = tmp_path / "d.jsonl"
    assert runner.invoke(command, ["--data", str(given), "--out", str(tmp_path)]).exit_code == 0
    assert received == {"data": given, "out": tmp_path, "count": 3}
    assert isinstance(received["data"], Path)
    # A file option refuses a folder, a folder option a file; --data is required.
    assert runner.invoke(command, ["--data", str(tmp_path)]).exit_code == 2
    given.write_text("", encoding="utf-8")
    assert runner.invoke(command, ["--data", str(given), "--out", str(given)]).exit_code == 2
    assert runner.invoke(command, []).exit_code == 2


def test_print_plain_keeps_brackets_and_long_paths_whole() -> None:
    from rich.console import Console

    from hag_agent.cli.plain_text import print_plain

    console = Console(width=20, record=True, force_terminal=False)
    line = "wrote /a/very/long/path/[bold]out.jsonl: 3 cases"
    print_plain(console, line)
    assert console.export_text() == line + "\n"
