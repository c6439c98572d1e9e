"""The built-in suites, the JSONL suite files, and the loader every command shares.

A suite is a list of `SuiteCase`; on disk it is JSONL, one case a line::

    {"id": "coinflip-0-000", "task": "reasoning", "prompt": "A coin is heads up. ...",
     "answer": "yes", "metric": "yes_no"}

A case carries what its metric needs: ``answer`` for ``exact``, ``verbatim``, ``number`` and
``yes_no``, ``answers`` for ``one_of``, ``reference`` for ``chrf``, ``keywords`` for ``coverage``.
Without ``metric`` the metric follows from the task and the fields (see `SuiteCase.metric_name`).
Everywhere a suite name is accepted, a path to such a file works too (`load_cases`).

The first six suites are the training suites of the shipped proposers; short_facts, copy_exact
and chat_reply are held out (`SuiteSpec.held_out`): request kinds and prompt styles those
proposers never saw, to measure them outside their training distribution.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from hag_agent.data import decoding_generators as dg
from hag_agent.data import generators as g
from hag_agent.data.cases import SuiteCase
from hag_agent.errors import HAGInputError
from hag_agent.tasks import TaskKind

logger = logging.getLogger(__name__)


class SuiteFormatError(HAGInputError):
    """A suite file is unusable: a malformed line, a duplicate id, or no cases at all.

    Attributes:
        path: The file, as given.
        line: The 1-based line number, or None when the problem is the whole file.
    """

    def __init__(self, message: str, *, path: str, line: int | None = None) -> None:
        self.path = path
        self.line = line
        self.message = message
        where = path if line is None else f"{path}:{line}"
        super().__init__(f"{where}: {message}")

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickle with the constructor's own arguments (a cluster's worker sends it back)."""
        return (functools.partial(type(self), path=self.path, line=self.line), (self.message,))


@dataclass(frozen=True)
class SuiteSpec:
    """A built-in suite: what it is and the seeded generator that makes it."""

    name: str
    """The suite name (`make_suite`, `load_cases`)."""
    description: str
    """One line for listings."""
    task: TaskKind
    """The task kind of every case."""
    metric: str
    """The metric of every case."""
    default_size: int
    """Cases made when no size is given."""
    generator: Callable[[int, int], list[SuiteCase]]
    """``generator(n, seed)``: n cases, the same for the same seed."""
    max_size: int | None = None
    """The most distinct cases the suite has, when it is finite."""
    held_out: bool = False
    """Not a training suite: kinds of request the shipped proposers were not trained on."""


def _held_out_table(
    name: str,
    description: str,
    task: TaskKind,
    generator: Callable[[int, int], list[SuiteCase]],
    rows: int,
) -> SuiteSpec:
    """A held-out suite of a hand-written table scored by one_of: by default all of its rows."""
    return SuiteSpec(name, description, task, "one_of", rows, generator, rows, held_out=True)


def _training_suites() -> list[SuiteSpec]:
    """The six suites the shipped proposers were tuned on."""
    return [
        SuiteSpec(
            "coinflip",
            "CoinFlip: is the coin still heads up after people flip it or not (yes/no)",
            TaskKind.REASONING,
            "yes_no",
            40,
            g.coinflip,
        ),
        SuiteSpec(
            "last_letters",
            "Last-letter concatenation of 2-4 names",
            TaskKind.REASONING,
            "exact",
            40,
            g.last_letters,
        ),
        SuiteSpec(
            "arithmetic",
            "One- and two-step arithmetic word problems with an integer answer",
            TaskKind.MATH,
            "number",
            40,
            g.arithmetic,
        ),
        SuiteSpec(
            "pig_latin",
            "Pig Latin of a short phrase, rules stated in the prompt (exact)",
            TaskKind.REASONING,
            "exact",
            30,
            g.pig_latin,
        ),
        SuiteSpec(
            "translation",
            "Hand-written everyday sentences into French, German or Spanish (chrF)",
            TaskKind.TRANSLATION,
            "chrf",
            30,
            g.translation,
            max_size=3 * len(g.load_translations()),
        ),
        SuiteSpec(
            "keywords",
            "One sentence using 3 given words (keyword coverage plus diversity)",
            TaskKind.CREATIVE,
            "coverage",
            20,
            g.keywords,
        ),
    ]


def _decoding_suites() -> list[SuiteSpec]:
    """The suites where the decoding settings decide the score (`decoding_generators`)."""
    return [
        SuiteSpec(
            "distinct_list",
            "Decoding decides: list 4-8 different items of a category, one per line",
            TaskKind.CHAT,
            "distinct_items",
            60,
            dg.distinct_list,
            max_size=len(dg.load_list_categories()) * len(dg.LIST_SIZES) * len(dg.LIST_PROMPTS),
        ),
        SuiteSpec(
            "repeat_exact",
            "Decoding decides: repeat a sentence word for word",
            TaskKind.CHAT,
            "verbatim",
            60,
            dg.repeat_exact,
        ),
        SuiteSpec(
            "talk_at_length",
            "Decoding decides: talk about an everyday topic in about 40, 60 or 80 words, "
            "without loops",
            TaskKind.CHAT,
            "loop_free_length",
            60,
            dg.talk_at_length,
            max_size=len(dg.TALK_PROMPTS) * len(dg.TALK_TOPICS) * len(dg.CONTINUATION_LENGTHS),
        ),
        SuiteSpec(
            "continuation",
            "Decoding decides: continue a story in about 40, 60 or 80 words, without loops",
            TaskKind.CREATIVE,
            "loop_free_length",
            60,
            dg.continuation,
            max_size=len(dg.OPENINGS) * len(g.NAMES) * len(dg.THINGS) * 3,
        ),
    ]


def _held_out_suites() -> list[SuiteSpec]:
    """Kinds of request the shipped proposers were never trained on."""
    return [
        _held_out_table(
            "short_facts",
            "Held out: one-word or one-number factual questions (capitals, colours, opposites, "
            "counts); 1 for an accepted answer alone, 0.5 when the first sentence names one",
            TaskKind.FACTUAL,
            g.short_facts,
            len(g.load_short_facts()),
        ),
        SuiteSpec(
            "copy_exact",
            "Held out: repeat a text exactly, in capital or lowercase letters, or its words "
            "reversed (verbatim: case and punctuation count)",
            TaskKind.CHAT,
            "verbatim",
            40,
            g.copy_exact,
            held_out=True,
        ),
        _held_out_table(
            "chat_reply",
            'Held out: small requests answered in one word ("Suggest one fruit for breakfast"); '
            "1 for a word of a generous accepted list alone, 0.5 when the first sentence names one",
            TaskKind.CHAT,
            g.chat_reply,
            len(g.load_chat_requests()),
        ),
    ]


def builtin_suites() -> dict[str, SuiteSpec]:
    """The built-in suites by name, in listing order."""
    specs = [*_training_suites(), *_decoding_suites(), *_held_out_suites()]
    return {spec.name: spec for spec in specs}


def _unknown_suite(name: str) -> HAGInputError:
    valid = ", ".join(builtin_suites())
    return HAGInputError(
        f"unknown suite {name!r}; built-in suites: {valid} (or give the path of a JSONL file)"
    )


def make_suite(name: str, n: int | None = None, seed: int = 0) -> list[SuiteCase]:
    """Generate a built-in suite; the same name, size and seed always give the same cases.

    Args:
        name: A built-in suite name (`builtin_suites`).
        n: How many cases; None for the suite's default size.
        seed: The generator seed.

    Raises:
        HAGInputError: Unknown name, or a size below 1 or above what the suite has.
    """
    specs = builtin_suites()
    if name not in specs:
        raise _unknown_suite(name)
    spec = specs[name]
    size = spec.default_size if n is None else n
    if size < 1:
        raise HAGInputError(f"suite size must be at least 1, got {size}")
    if spec.max_size is not None and size > spec.max_size:
        raise HAGInputError(f"suite {name!r} has at most {spec.max_size} cases, asked for {size}")
    return spec.generator(size, seed)


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        loc = ".".join(str(p) for p in item["loc"])
        msg = str(item["msg"]).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def load_cases(
    source: str | Path,
    *,
    on_bad_line: Literal["skip", "fail"] = "fail",
    warn: Callable[[str], None] | None = None,
) -> list[SuiteCase]:
    """Load a built-in suite by name (default size, seed 0) or a JSONL file of cases.

    A string that names a built-in suite is that suite; anything else is a path (write
    ``./coinflip`` to read a file that shares a suite's name). Blank lines are ignored.

    Args:
        source: A built-in suite name or a JSONL path.
        on_bad_line: ``"fail"`` raises on the first malformed line (not JSON, not an object,
            missing or unknown field, unknown task or metric); ``"skip"`` reports it through
            ``warn`` and goes on.
        warn: Receives each skipped line's message; defaults to this module's logger.

    Raises:
        SuiteFormatError: A malformed line (with ``"fail"``), a duplicate id, or no cases.
        HAGInputError: Neither a built-in suite nor an existing file.
    """
    if isinstance(source, str) and source in builtin_suites():
        return make_suite(source)
    report = warn if warn is not None else logger.warning
    return _read_case_file(_suite_file(source), str(source), on_bad_line, report)


def _suite_file(source: str | Path) -> Path:
    """The existing file a source names, once it is known not to be a built-in suite.

    Raises:
        HAGInputError: No such file; a bare word is reported as an unknown suite, since that
            is more likely what was meant than a file.
    """
    path = Path(source)
    if not path.is_file():
        if isinstance(source, str) and os.sep not in source and not source.endswith(".jsonl"):
            raise _unknown_suite(source)
        raise HAGInputError(f"no such suite file: {path}")
    return path


def _parse_case(raw: str) -> SuiteCase | str:
    """One JSONL line as a case, or what is wrong with it."""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        return f"not JSON ({exc.msg} at column {exc.colno})"
    if not isinstance(data, dict):
        return f"expected a JSON object, got {type(data).__name__}"
    try:
        return SuiteCase.model_validate(data)
    except ValidationError as exc:
        return _describe(exc)


def _read_case_file(
    path: Path,
    label: str,
    on_bad_line: Literal["skip", "fail"],
    report: Callable[[str], None],
) -> list[SuiteCase]:
    """Read a JSONL suite file (see `load_cases`); errors name the file as ``label``."""
    cases: list[SuiteCase] = []
    first_line: dict[str, int] = {}
    with path.open(encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            case = _parse_case(raw)
            if isinstance(case, str):
                error = SuiteFormatError(case or "invalid case", path=label, line=number)
                if on_bad_line == "fail":
                    raise error
                report(f"skipped {error}")
                continue
            # A duplicate id fails even when skipping: which of the two cases was meant is unknown.
            if case.id in first_line:
                raise SuiteFormatError(
                    f"duplicate id {case.id!r} (first on line {first_line[case.id]})",
                    path=label,
                    line=number,
                )
            first_line[case.id] = number
            cases.append(case)
    if not cases:
        raise SuiteFormatError("no usable cases", path=label)
    return cases


def write_cases(cases: Iterable[SuiteCase], path: Path) -> None:
    """Write cases as JSONL (UTF-8, unset fields left out), replacing the file atomically.

    Args:
        cases: The cases, written in order.
        path: The target file; its folder is created when missing.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        json.dumps(case.model_dump(mode="json", exclude_none=True), ensure_ascii=False) + "\n"
        for case in cases
    ]
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.writelines(lines)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a suite file is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


__all__ = [
    "SuiteCase",
    "SuiteFormatError",
    "SuiteSpec",
    "builtin_suites",
    "load_cases",
    "make_suite",
    "write_cases",
]
