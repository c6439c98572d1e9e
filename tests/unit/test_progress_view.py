"""The CLI's view of progress events: bars on a terminal, notes always, no idle bar left."""

from __future__ import annotations

import io

from rich.console import Console

from hag_agent.cli.progress_view import ProgressView
from hag_agent.progress import ProgressEvent


def test_notes_print_even_without_bars_and_stages_end_cleanly() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=100)
    with ProgressView(console, enabled=False) as view:
        view(ProgressEvent("start", "base model"))
        view(ProgressEvent("end", "base model"))
        view(ProgressEvent("start", "train", total=3))
        view(ProgressEvent("advance", "train", done=3, total=3, message="loss 0.5"))
        view(ProgressEvent("note", "train", message="warning: [not markup] kept"))
        view(ProgressEvent("end", "train", done=3, total=3))
        # A stage of unknown size is removed when it ends; the sized one stays, finished.
        assert [task.description for task in view._progress.tasks] == ["train"]
        assert view._progress.tasks[0].completed == 3
    assert out.getvalue() == "warning: [not markup] kept\n"
