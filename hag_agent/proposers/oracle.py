"""Proposer ``oracle``: the best configuration a search found for the case (an upper bound).

It reads a search file (``hag-agent dataset search``; once per process, again when it changes)
and looks the record up by the case id when the run has one (the evaluation), else by the
prompt text. A prompt the file has no record of gets the task prior, with the reason traced.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from hag_agent.data.search_records import SearchRecord, read_records
from hag_agent.data.suites import SuiteCase
from hag_agent.errors import HAGInputError
from hag_agent.hyperparameters import HyperParams, ParamSource
from hag_agent.proposing import (
    Proposal,
    ProposalRequest,
    ProposalSteps,
    Proposer,
    ProposerSettings,
)


class OracleSettings(ProposerSettings):
    """Proposer ``oracle``'s settings."""

    search_file: Path
    """Search records (``hag-agent dataset search``) giving each case's best configuration."""


@dataclass(frozen=True)
class _SearchTable:
    by_id: dict[str, SearchRecord]
    by_prompt: dict[str, SearchRecord]


@lru_cache(maxsize=8)
def _table(path: str, mtime_ns: int, size: int) -> _SearchTable:
    # Keyed by the file's mtime and size too, so a rewritten file is read again.
    records = read_records(path)
    return _SearchTable({r.id: r for r in records}, {r.prompt: r for r in records})


def search_table(path: Path) -> _SearchTable:
    """The records of a search file by case id and by prompt (cached until the file changes).

    Raises:
        HAGInputError: When there is no such file.
    """
    try:
        status = path.stat()
    except OSError:
        raise HAGInputError(f"no such search file: {path}") from None
    return _table(str(path), status.st_mtime_ns, status.st_size)


def oracle_params(
    search_file: str | Path,
    cases: Sequence[SuiteCase],
    *,
    warn: Callable[[str], None] | None = None,
) -> dict[str, HyperParams]:
    """The best configuration of each case from a search file.

    Raises:
        HAGInputError: When the file is missing or lacks a record for some case (listed).
    """
    path = Path(search_file)
    if not path.is_file():
        raise HAGInputError(f"no such search file: {path}")
    records = {r.id: r for r in read_records(path, warn=warn)}
    missing = [c.id for c in cases if c.id not in records]
    if missing:
        shown = ", ".join(missing[:10]) + (
            f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        )
        raise HAGInputError(
            f"search file {path} has no record for {len(missing)} of {len(cases)} case(s): "
            f"{shown}; run `hag-agent dataset search` on the same suite first"
        )
    return {c.id: records[c.id].best_params() for c in cases}


class OracleProposer(Proposer):
    """The searched best configuration of the case."""

    name = "oracle"
    settings_type = OracleSettings
    settings: OracleSettings

    def propose(self, request: ProposalRequest) -> ProposalSteps:
        """Return the case's searched configuration; no model call."""
        table = search_table(self.settings.search_file)
        if request.case_id is not None:
            record, by = table.by_id.get(request.case_id), f"case {request.case_id!r}"
        else:
            record, by = table.by_prompt.get(request.prompt), "this prompt"
        if record is None:
            reason = (
                f"{self.settings.search_file} has no search record for {by}; "
                f"fallback to the {request.task.value} prior"
            )
            return Proposal.prior(request.task, reason, fallback=True)
        reason = f"the search's best for case {record.id!r} (score {record.score:.3f})"
        values = record.best_params().model_dump()
        return Proposal.uniform(
            values, ParamSource.FIXED, reason, search=str(self.settings.search_file)
        )
        yield  # pragma: no cover - makes this function a generator


__all__ = ["OracleProposer", "OracleSettings", "oracle_params", "search_table"]
