"""Resources: prompts past the limits and an unusable data directory give clear errors.

Each case runs the real command line on the embedded model (one thread) and expects exit code
2, a one-line message naming the cause, and no traceback.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from .figures import FIGURES


def hag(
    args: list[str], stdin: str = "", limit: int | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """The real command line; under a file-size limit of ``limit`` bytes when given."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HAG_", "OPENAI_"))}
    clean.update(HAG_N_THREADS="1", HAG_N_THREADS_BATCH="1", **env)
    return subprocess.run(
        [sys.executable, "-m", "hag_agent.cli", *args],
        input=stdin,
        env=clean,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        preexec_fn=None if limit is None else file_size_limit(limit),
    )


def file_size_limit(limit: int) -> Callable[[], None]:
    """Set ``RLIMIT_FSIZE``: a write past ``limit`` bytes fails with EFBIG, as on a full disk."""

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def assert_clear_error(done: subprocess.CompletedProcess[str], cause: str) -> None:
    output = done.stdout + done.stderr
    assert done.returncode == 2, (done.returncode, output[-2000:])
    assert "Traceback" not in output
    assert cause in done.stderr, done.stderr
    FIGURES["resources"]["clear errors"] += 1


RUN = ["run", "-", "--proposer", "prior", "--no-critique", "--param", "max_tokens=4"]


def test_a_prompt_over_max_prompt_chars_is_refused() -> None:
    done = hag(RUN, "x" * 101, HAG_MAX_PROMPT_CHARS="100")
    assert_clear_error(done, "over max_prompt_chars=100")


def test_a_prompt_at_max_prompt_chars_is_answered() -> None:
    done = hag(RUN, "Say hi" + "." * 94, HAG_MAX_PROMPT_CHARS="100")
    assert done.returncode == 0, done.stderr


def test_a_prompt_over_the_models_context_is_refused() -> None:
    done = hag(RUN, "word " * 6000)
    assert_clear_error(done, "does not fit the model's context")


CHAT = ["chat", "--json", "--proposer", "prior", "--param", "max_tokens=4"]


@pytest.mark.parametrize("damage", ["a file", "not SQLite"])
def test_an_unusable_data_directory_is_named(tmp_path: Path, damage: str) -> None:
    # Tests run as root here, where a read-only mode does not stop writes: a file in the data
    # directory's place, or a sessions file that is not a database, stands in for one.
    data = tmp_path / "data"
    if damage == "a file":
        data.write_text("not a directory")
    else:
        data.mkdir()
        (data / "sessions.sqlite").write_bytes(b"\x00garbage" * 400)
    done = hag(CHAT, "Say hi\n", HAG_DATA_DIR=str(data))
    assert_clear_error(done, f"cannot open the sessions database in {data}")
