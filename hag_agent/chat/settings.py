"""What a chat session pins for every turn: hyperparameters, the task kind, retries, critique."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hag_agent.context import resolve_context
from hag_agent.hyperparameters import HYPERPARAM_KEYS
from hag_agent.tasks import TaskKind


class ChatSettings(BaseModel):
    """The settings slash commands change; saved with the session."""

    model_config = ConfigDict(extra="forbid")

    pins: dict[str, float] = Field(default_factory=dict)
    """Pinned hyperparameters (``/set``), by key."""
    task: TaskKind | None = None
    """A pinned task kind (``/task``); None lets each turn be classified."""
    max_retries: int | None = None
    """Retries after the first attempt (``/retries``); None keeps the default."""
    critique: bool = True
    """Critique and retry at all (``/critique on|off``)."""

    def run_settings(self) -> dict[str, Any]:
        """These settings as per-call `HAGContext` fields (unset ones left to the defaults)."""
        settings: dict[str, Any] = {"critique": self.critique}
        if self.pins:
            settings["params"] = dict(self.pins)
        if self.task is not None:
            settings["task"] = self.task
        if self.max_retries is not None:
            settings["max_retries"] = self.max_retries
        return settings

    def validated(self, base: dict[str, Any]) -> ChatSettings:
        """Self, once the settings passed the same checks a run applies (bounds included).

        Raises:
            InvalidSettingsError: A value is outside its bound, naming the field.
        """
        resolve_context(self.run_settings(), base)
        return self


def parse_assignment(text: str) -> tuple[str, float]:
    """``KEY=VALUE`` (or ``KEY VALUE``) for ``/set`` and ``--param``: a known key and a number.

    Raises:
        ValueError: With a message that says what is wrong and what would be right.
    """
    text = text.strip()
    key, sep, value = (text if "=" in text else text.replace(" ", "=", 1)).partition("=")
    key, value = key.strip(), value.strip()
    if not sep or not key or not value:
        raise ValueError(f"expected KEY=VALUE, e.g. temperature=0.3 (got {text!r})")
    if key not in HYPERPARAM_KEYS:
        raise ValueError(f"unknown hyperparameter {key!r}; one of: {', '.join(HYPERPARAM_KEYS)}")
    try:
        return key, float(value)
    except ValueError:
        raise ValueError(f"{key}: {value!r} is not a number") from None
