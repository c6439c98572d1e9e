"""One mapping from what stops a command to its message and exit code, on every path."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from hag_agent.cli import suite_job
from hag_agent.cli.exit_codes import HAGCommand, HAGGroup, JobInterrupted
from hag_agent.cli.main import main
from hag_agent.errors import BackendError, HAGInputError

FAILURES: dict[str, BaseException] = {
    "input": HAGInputError("no such suite"),
    "backend": BackendError("server down", status=500),
    "file": FileNotFoundError(2, "No such file or directory", "x.jsonl"),
    "ctrl-c": KeyboardInterrupt(),
    "job-ctrl-c": JobInterrupted("finished cases are saved in out.jsonl"),
    "bug": RuntimeError("a bug"),
}
EXPECTED = {
    "input": (2, "error: no such suite"),
    "backend": (3, "backend error: server down (HTTP 500)"),
    "file": (2, "error: [Errno 2] No such file or directory: 'x.jsonl'"),
    "ctrl-c": (130, "interrupted"),
    "job-ctrl-c": (130, "interrupted; finished cases are saved in out.jsonl"),
}


def failing(name: str = "fail", cls: type[click.Command] = HAGCommand) -> click.Command:
    @click.command(name, cls=cls)
    @click.argument("kind")
    def command(kind: str) -> None:
        raise FAILURES[kind]

    return command


def group_of(command: click.Command) -> click.Group:
    @click.group(cls=HAGGroup)
    def group() -> None:
        pass

    group.add_command(command)
    return group


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_a_command_alone_and_under_a_group_exit_alike(kind: str) -> None:
    code, message = EXPECTED[kind]
    alone = CliRunner().invoke(failing(), [kind])
    grouped = CliRunner().invoke(group_of(failing(cls=click.Command)), ["fail", kind])
    for result in (alone, grouped):
        assert result.exit_code == code
        assert result.stderr.strip() == message and result.stdout == ""
        assert "Traceback" not in result.output


def test_a_bug_keeps_its_traceback() -> None:
    result = CliRunner().invoke(failing(), ["bug"])
    assert result.exit_code == 1 and isinstance(result.exception, RuntimeError)


def test_the_console_script_maps_the_same_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x"}\n', encoding="utf-8")
    argv = ["hag-agent", "train", "head", "--data", str(bad), "--out", str(tmp_path / "h.npz")]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as stopped:
        main()
    assert stopped.value.code == 2
    assert capsys.readouterr().err.startswith("error: ")
    monkeypatch.setattr(sys, "argv", ["hag-agent", "train", "head", "--kind", "lasso"])
    with pytest.raises(SystemExit) as stopped:
        main()
    assert stopped.value.code == 2 and "Invalid value for '--kind'" in capsys.readouterr().err


def test_noting_interrupts_only_notes_what_ctrl_c_saved() -> None:
    def job(raised: BaseException, saved: str) -> None:
        with suite_job.noting_interrupts(saved):
            raise raised

    with pytest.raises(JobInterrupted) as stopped:
        job(KeyboardInterrupt(), "finished cases are saved in o.jsonl")
    note = "finished cases are saved in o.jsonl: rerun the same command to continue"
    assert stopped.value.note == note
    for passing in (HAGInputError("bad"), BackendError("down"), PermissionError("read-only")):
        with pytest.raises(type(passing)) as raised:
            job(passing, "nothing was written")
        assert raised.value is passing
