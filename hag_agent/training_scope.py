"""What a trained proposer was trained on: the task kinds its data held, the values it held fixed.

A search that pins a hyperparameter (``--max-tokens 48``) writes data in which that value never
varies, so a proposer trained on it learns the constant, not a choice: the shipped adapter and
head proposed ``max_tokens: 48`` for every request and cut long answers. A `TrainingScope` travels
with a trained proposer (beside an adapter file, inside a head file). At run time a held budget
(`BUDGET_KEYS`) is left to the task prior, a held sampling value stays at the value the data held,
and a task kind its data never held is left to the prior as a whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from hag_agent.hyperparameters import HYPERPARAM_KEYS
from hag_agent.tasks import TaskKind

BUDGET_KEYS = frozenset({"max_tokens"})
"""Held values the task prior replaces at run time: a budget the search chose for its own cost
(48 tokens, to score cases quickly) says nothing about how long an answer should be. A held
*sampling* value stays at the value every training score was measured with: the prior's would
pair the learned values with one never scored beside them. Measured on 40 held-out cases: the
shipped adapter scored 0.155 with the creative prior's min_p 0.05 against 0.188 with its data's
0.0 (docs/results.md)."""


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

    def budgets(self) -> list[str]:
        """The held keys that are budgets (left to the task prior), in the usual key order."""
        return [key for key in HYPERPARAM_KEYS if key in self.fixed and key in BUDGET_KEYS]

    def held_sampling(self) -> dict[str, float]:
        """The held keys that are sampling values, with the value the data held them at."""
        return {key: value for key, value in self.fixed.items() if key not in BUDGET_KEYS}

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


__all__ = ["BUDGET_KEYS", "TrainingScope", "held_values"]
