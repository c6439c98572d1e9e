"""Search output -> fine-tuning examples, and the held-out split by case id.

One example per search record, in TRL's conversational prompt-completion form, so the loss falls
on the completion only::

    {"prompt": [{"role": "user", "content": proposal_prompt(task, prompt)}],
     "completion": [{"role": "assistant", "content": best_params.to_proposal_json()}]}

The prompt is exactly what the ``self`` proposer sends at run time (`proposal_prompt`); the
completion is the compact proposal JSON of the search's best configuration.

The split is a property of each case id alone: a case is held out when a hash of ``seed`` and its
id falls below ``fraction``. Adding cases to a data set never moves an existing case between the
sides, and the same seed always gives the same split. With two or more cases and a fraction above
zero, at least one case is held out and at least one is trained on.

Needs no training packages (no torch): usable by the evaluation harness and in unit tests.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypedDict

from hag_agent.data.search_records import SearchRecord
from hag_agent.errors import HAGInputError
from hag_agent.proposal import proposal_prompt
from hag_agent.tasks import TaskKind


class ChatMessage(TypedDict):
    """One chat message."""

    role: str
    content: str


class SFTExample(TypedDict):
    """One prompt-completion fine-tuning example (TRL's conversational form)."""

    prompt: list[ChatMessage]
    completion: list[ChatMessage]


def sft_example(record: SearchRecord) -> SFTExample:
    """The fine-tuning example of one record: the run-time proposal request -> the best params."""
    return {
        "prompt": [
            {"role": "user", "content": proposal_prompt(TaskKind(record.task), record.prompt)}
        ],
        "completion": [{"role": "assistant", "content": record.best_params().to_proposal_json()}],
    }


def held_out_score(case_id: str, seed: int) -> float:
    """A case's position in [0, 1), from a hash of the seed and its id (stable across runs)."""
    digest = hashlib.sha256(f"{seed}\x00{case_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def held_out_ids(ids: Sequence[str], fraction: float, seed: int) -> set[str]:
    """The ids held out from training (see the module docstring).

    Args:
        ids: Case ids (duplicates count once).
        fraction: Expected share held out, in [0, 1).
        seed: Changes which cases are held out.

    Raises:
        HAGInputError: For a fraction outside [0, 1).
    """
    if not 0.0 <= fraction < 1.0:
        raise HAGInputError(f"the held-out fraction must be in [0, 1), not {fraction}")
    unique = sorted(set(ids))
    if fraction == 0.0 or len(unique) < 2:
        return set()
    scores = {case_id: held_out_score(case_id, seed) for case_id in unique}
    held = {case_id for case_id, score in scores.items() if score < fraction}
    if not held:
        held = {min(unique, key=scores.__getitem__)}
    if len(held) == len(unique):
        held.discard(max(unique, key=scores.__getitem__))
    return held


@dataclass(frozen=True)
class SFTSplit:
    """Records for training and records held out for the report (disjoint by case id)."""

    train: list[SearchRecord]
    held_out: list[SearchRecord]

    @property
    def held_out_ids(self) -> list[str]:
        """The held-out case ids, in file order."""
        return [record.id for record in self.held_out]


def split_records(records: Sequence[SearchRecord], fraction: float, seed: int) -> SFTSplit:
    """Split records by case id (`held_out_ids`), keeping file order on each side."""
    held = held_out_ids([record.id for record in records], fraction, seed)
    return SFTSplit(
        train=[r for r in records if r.id not in held],
        held_out=[r for r in records if r.id in held],
    )


__all__ = [
    "ChatMessage",
    "SFTExample",
    "SFTSplit",
    "held_out_ids",
    "held_out_score",
    "sft_example",
    "split_records",
]
