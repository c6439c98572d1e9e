"""The per-request HAG options: the ``hag`` object of a request body (``extra_body`` in SDKs)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hag_agent.context import ClassifierName, CriticName
from hag_agent.proposer_registry import ProposerName
from hag_agent.sessions.names import NAME_PATTERN
from hag_agent.tasks import TaskKind


class HagOptions(BaseModel):
    """Run settings a client may choose per request; unset ones keep the server's.

    Settings that name files on the server (a learned head, a search file, proposer options)
    are the server's alone: a client must not make the server read paths of its choosing.
    """

    model_config = ConfigDict(extra="forbid")

    proposer: ProposerName | None = None
    """Who proposes the configuration: ``self``, ``prior``, ``fixed``, ``learned``, ``default``,
    ``random``, ``self-tuned`` or a plugin's."""
    max_retries: int | None = Field(default=None, ge=0, le=10)
    """Retries after the first attempt."""
    critique: bool | None = None
    """Critique and retry at all."""
    critic: CriticName | None = None
    """``signals`` or ``judge`` (signals plus an LLM judge)."""
    classifier: ClassifierName | None = None
    """``rules`` or ``llm``."""
    accept_threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    """An attempt scoring at least this is accepted."""
    task: TaskKind | None = None
    """Pin the task kind (skips classification)."""
    params: dict[str, float] = Field(default_factory=dict)
    """Hyperparameters to pin (over the client's sampling fields and any proposal)."""
    session: str | None = Field(default=None, pattern=NAME_PATTERN)
    """Keep the conversation on the server under this name: send only the new user
    message(s) (see `hag_agent.serve.sessions` for the rules)."""

    def run_settings(self) -> dict[str, Any]:
        """The `HAGContext` settings these options stand for (unset ones left out)."""
        settings = self.model_dump(exclude_none=True, exclude={"params", "session"})
        if self.params:
            settings["params"] = dict(self.params)
        return settings


__all__ = ["HagOptions"]
