"""The graph state: what comes in, what every node records, and what goes out.

Every attempt is kept (params, where each value came from, output, critique, timings, tokens);
the answer is the best-scored attempt, not simply the last.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages
from pydantic import BaseModel, ConfigDict, Field

from hag_agent.critique import Critique
from hag_agent.hyperparameters import ClampRecord, HyperParams, ParamSource
from hag_agent.tasks import TaskKind


class PlannedParams(BaseModel):
    """A configuration chosen for the next generation, with its provenance."""

    model_config = ConfigDict(extra="forbid")

    params: HyperParams
    """The bounded configuration."""
    sources: dict[str, ParamSource]
    """Where each value came from."""
    clamps: list[ClampRecord] = Field(default_factory=list)
    """Values the bounds policy changed on the way."""
    reason: str = ""
    """Why these values (proposal outcome or adjustment)."""


class Attempt(BaseModel):
    """One generation under one configuration, and what the critique made of it."""

    model_config = ConfigDict(extra="forbid")

    index: int
    """0 for the first attempt, then 1, 2, ... for retries."""
    params: HyperParams
    """The configuration used."""
    sources: dict[str, ParamSource]
    """Where each value came from: model, prior, learned, pinned, fixed or retry."""
    clamps: list[ClampRecord] = Field(default_factory=list)
    """Values the bounds policy changed before this attempt."""
    reason: str = ""
    """Why these params were chosen."""
    output: str = ""
    """The generated text."""
    finish_reason: str | None = None
    """The backend's finish reason (``stop``, ``length``, ...)."""
    prompt_tokens: int | None = None
    """Prompt tokens, where the backend reports usage."""
    completion_tokens: int | None = None
    """Generated tokens, where the backend reports usage."""
    latency_s: float = 0.0
    """Wall time of the generation call."""
    mean_logprob: float | None = None
    """Mean token logprob, where the backend gives logprobs."""
    error: str | None = None
    """The backend error that ended this attempt, if any."""
    tool_calls: list[dict[str, Any]] = Field(default_factory=list)
    """The tool calls this attempt answered with (tools bound to the answer call)."""
    invalid_tool_calls: list[dict[str, Any]] = Field(default_factory=list)
    """Tool calls it wrote that could not be parsed."""
    critique: Critique | None = None
    """The verdict, unless critique is off or the attempt failed."""


class TraceEvent(BaseModel):
    """One recorded decision or fallback, in order."""

    model_config = ConfigDict(extra="forbid")

    node: str
    """The node that made it."""
    message: str
    """What happened, in words."""
    data: dict[str, Any] = Field(default_factory=dict)
    """Details (raw model text, reasons, values)."""


@dataclass(kw_only=True)
class InputState:
    """What a caller gives the graph."""

    messages: Annotated[list[AnyMessage], add_messages] = field(default_factory=list)
    """The conversation; its last human message is the prompt. The answer is appended."""


@dataclass(kw_only=True)
class OutputState:
    """What the graph returns."""

    messages: Annotated[list[AnyMessage], add_messages] = field(default_factory=list)
    """The conversation with the chosen answer appended."""
    answer: str = ""
    """The best attempt's output."""
    task: TaskKind | None = None
    """The task kind the run settled on."""
    attempts: list[Attempt] = field(default_factory=list)
    """Every attempt, in order."""
    best_attempt: int | None = None
    """Index of the attempt whose output is the answer."""
    stop_reason: str = ""
    """Why the loop ended (accepted, retries exhausted, nothing new to try, backend failure)."""
    trace: list[TraceEvent] = field(default_factory=list)
    """Every decision and fallback, in order."""


@dataclass(kw_only=True)
class HAGState(OutputState):
    """The whole state: the output fields plus what travels between nodes."""

    prompt: str = ""
    """The text of the last human message."""
    request_id: str = ""
    """Identifies this turn's model calls (the embedded backend shares its prompt cache within)."""
    pending: PlannedParams | None = None
    """The configuration the next generate call will use."""
