"""What a trained proposer was trained on: the task kinds its data held, the values it held fixed.

A search that pins a hyperparameter (``--max-tokens 48``) writes data in which that value never
varies, so a proposer trained on it learns the constant, not a choice: the shipped adapter and
head proposed ``max_tokens: 48`` for every request and cut long answers. A `TrainingScope` travels
with a trained proposer (beside an adapter file, inside a head file); at run time the keys it held
fixed are left to the task prior, and a task kind its data never held is left to the prior as a
whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from hag_agent.hyperparameters import HYPERPARAM_KEYS
from hag_agent.tasks import TaskKind


class TrainingScope(BaseModel):
    """The reach of a trained proposer: what its training data varied and which tasks it held."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fixed: dict[str, float] = Field(default_factory=dict)
    """Hyperparameters the training data held at one value, with that value."""
    task_kinds: frozenset[TaskKind] | None = None
    """The task kinds of the training cases; None when unknown (then any kind is in scope)."""

    @field_serializer("task_kinds")
    def _sorted_kinds(self, kinds: frozenset[TaskKind] | None) -> list[str] | None:
        # Sorted: a set dumps in hash order, which changes from one process to the next, and
        # the same scope must write the same bytes (a card's or a head file's sha256).
        return None if kinds is None else sorted(kind.value for kind in kinds)

    def covers(self, task: TaskKind) -> bool:
        """Whether the training data held cases of this task kind."""
        return self.task_kinds is None or task in self.task_kinds

    @classmethod
    def of_data(
        cls, configurations: Iterable[Mapping[str, float]], task_kinds: Iterable[TaskKind]
    ) -> TrainingScope:
        """The scope of training data: every configuration it scored, and its cases' kinds.

        A key is fixed when it has one value across all the configurations (with fewer than two
        configurations nothing can be told, and nothing is fixed).
        """
        configurations = list(configurations)
        fixed = held_values(configurations) if len(configurations) >= 2 else {}
        return cls(fixed=fixed, task_kinds=frozenset(task_kinds))


def held_values(configurations: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """The hyperparameters every configuration holds, each at one value (none of none)."""
    maps = list(configurations)
    return {
        key: float(maps[0][key])
        for key in HYPERPARAM_KEYS
        if maps and all(key in m for m in maps) and len({float(m[key]) for m in maps}) == 1
    }


__all__ = ["TrainingScope", "held_values"]
