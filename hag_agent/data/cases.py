"""One case of a task suite: a prompt and what its metric needs (the JSONL line's schema).

A case carries what its metric needs: ``answer`` for ``exact``, ``verbatim``, ``number`` and
``yes_no``, ``answers`` for ``one_of``, ``reference`` for ``chrf``, ``keywords`` for ``coverage``,
``answers`` and ``count`` for ``distinct_items``, ``count`` for ``loop_free_length``.
Without ``metric`` the metric follows
from the task and the fields (see `SuiteCase.metric_name`).
"""

from __future__ import annotations

from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from hag_agent.tasks import TaskKind

METRIC_NAMES: tuple[str, ...] = (
    "exact",
    "number",
    "yes_no",
    "chrf",
    "coverage",
    "verbatim",
    "one_of",
    "distinct_items",
    "loop_free_length",
)
"""Every metric name a case may name (`hag_agent.metrics.METRICS` implements each)."""

METRIC_FIELD: dict[str, str] = {
    "exact": "answer",
    "number": "answer",
    "yes_no": "answer",
    "chrf": "reference",
    "coverage": "keywords",
    "verbatim": "answer",
    "one_of": "answers",
    "distinct_items": "answers",
    "loop_free_length": "count",
}
"""The case field each metric scores against."""

COUNTED_METRICS: frozenset[str] = frozenset({"distinct_items", "loop_free_length"})
"""The metrics that also need ``count``: items asked for, or words asked for."""

TASK_DEFAULT_METRIC: dict[TaskKind, str] = {
    TaskKind.MATH: "number",
    TaskKind.TRANSLATION: "chrf",
    TaskKind.CREATIVE: "coverage",
}
"""The default metric of a task, used when the case has the field it needs."""

_FIELDS = ("answer", "answers", "reference", "keywords", "count")
"""The fields a metric scores against; a case has at least one."""

_VALID_TASKS = ", ".join(kind.value for kind in TaskKind)
_VALID_METRICS = ", ".join(METRIC_NAMES)


class SuiteCase(BaseModel):
    """One case of a suite: a prompt and what its metric needs."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    """Unique within its suite; the key of resumable runs."""
    task: TaskKind
    """The task kind (decides the prior and the default metric)."""
    prompt: str = Field(min_length=1)
    """The query sent to the model."""
    answer: str | None = None
    """The expected answer for the exact-match metrics (exact, verbatim, number, yes_no)."""
    answers: list[str] | None = None
    """The accepted answers, any one of them right (one_of)."""
    reference: str | None = None
    """The reference text for chrF."""
    keywords: list[str] | None = None
    """The words a creative answer must use (coverage)."""
    count: int | None = Field(default=None, ge=1, le=10_000)
    """How many different items a list must give (distinct_items), or about how many words a
    continuation should have (loop_free_length)."""
    metric: str | None = None
    """A metric name overriding the task/field default."""

    @field_validator("task", mode="before")
    @classmethod
    def _known_task(cls, value: Any) -> Any:
        if isinstance(value, str) and value not in {kind.value for kind in TaskKind}:
            raise ValueError(f"unknown task {value!r}; valid tasks: {_VALID_TASKS}")
        return value

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str | None) -> str | None:
        if value is not None and value not in METRIC_NAMES:
            raise ValueError(f"unknown metric {value!r}; valid metrics: {_VALID_METRICS}")
        return value

    @field_validator("keywords", "answers")
    @classmethod
    def _real_words(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if value is not None and (not value or not all(k.strip() for k in value)):
            raise ValueError(f"{info.field_name} must be a non-empty list of non-empty words")
        return value

    @model_validator(mode="after")
    def _metric_has_its_field(self) -> SuiteCase:
        if all(getattr(self, field) is None for field in _FIELDS):
            raise ValueError("a case needs one of answer, answers, reference, keywords or count")
        name = self.metric_name
        needed = METRIC_FIELD[name]
        if getattr(self, needed) is None:
            raise ValueError(f"metric {name!r} needs the field {needed!r}")
        if name in COUNTED_METRICS and self.count is None:
            raise ValueError(f"metric {name!r} needs the field 'count'")
        if name == "yes_no" and (self.answer or "").strip().lower() not in ("yes", "no"):
            raise ValueError(f"metric 'yes_no' needs answer 'yes' or 'no', got {self.answer!r}")
        if name == "number":
            try:
                float((self.answer or "").replace(",", "").strip())
            except ValueError:
                raise ValueError(
                    f"metric 'number' needs a numeric answer, got {self.answer!r}"
                ) from None
        return self

    @property
    def metric_name(self) -> str:
        """The metric that scores this case.

        In order: ``metric`` when set; the task's default (math: number, translation: chrf,
        creative: coverage) when the case has that metric's field; else by field: ``answer`` gives
        yes_no for a yes/no answer and exact otherwise, ``answers`` gives one_of, ``reference``
        gives chrf, ``keywords`` gives coverage, ``count`` alone gives loop_free_length.
        """
        if self.metric is not None:
            return self.metric
        default = TASK_DEFAULT_METRIC.get(self.task)
        if default is not None and getattr(self, METRIC_FIELD[default]) is not None:
            return default
        if self.answer is not None:
            return "yes_no" if self.answer.strip().lower() in ("yes", "no") else "exact"
        if self.answers is not None:
            return "one_of"
        if self.reference is not None:
            return "chrf"
        if self.keywords is None and self.count is not None:
            return "loop_free_length"
        return "coverage"


__all__ = ["COUNTED_METRICS", "METRIC_FIELD", "METRIC_NAMES", "TASK_DEFAULT_METRIC", "SuiteCase"]
