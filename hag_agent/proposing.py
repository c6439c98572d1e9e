"""Proposers: who chooses a run's first configuration, as one interface and one registry.

A proposer is one `Proposer` subclass with a ``name`` and its own settings type (a pydantic model
that forbids unknown keys). Its `Proposer.propose` is written like a node: a generator that yields
the model calls it needs (`DecideCall`, `EmbedCall`) and returns a `Proposal`. The propose node
asks `proposer_for` for the run's proposer, runs it, then applies pinned params and the bounds
policy; the evaluation harness runs every proposer it compares through the same graph.

Proposers are found by name: the built-ins (`hag_agent.proposers`) by import path, imported on
first use only, plus any registered with `register_proposer` or by a third-party package's entry
point in the ``hag_agent.proposers`` group (its object is the `Proposer` subclass). This module is
part of the core: it imports no plug-in statically.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from hag_agent.backend_choice import resolve_backend
from hag_agent.errors import invalid_setting
from hag_agent.hyperparameters import HYPERPARAM_KEYS, ClampRecord, DecodingBounds, ParamSource
from hag_agent.node_driver import Call, CallResult
from hag_agent.proposer_registry import (
    ENTRY_POINT_GROUP,
    PROPOSERS,
    ProposerName,
    proposer_names,
    register_proposer,
)
from hag_agent.tasks import TASK_PRIORS, TaskKind
from hag_agent.training_scope import TrainingScope

if TYPE_CHECKING:
    from hag_agent.context import HAGContext


@dataclass(frozen=True)
class ProposalRequest:
    """What a proposer is asked to propose for: one turn's prompt, in its run.

    Attributes:
        prompt: The turn's prompt.
        task: The turn's task kind (pinned or classified).
        bounds: The run's bounds policy (the node applies it again to whatever is proposed).
        seed: The run's sampling seed.
        case_id: The case's id when a suite is run (the evaluation harness), else None.
        scope: What the backend's proposer model was trained on (`Backend.proposer_scope`:
            a tuned proposer's card), None when unknown.
    """

    prompt: str
    task: TaskKind
    bounds: DecodingBounds
    seed: int | None = None
    case_id: str | None = None
    scope: TrainingScope | None = None

    @property
    def key(self) -> str:
        """What identifies the prompt: the case id when given, else the prompt text."""
        return self.case_id if self.case_id is not None else self.prompt


@dataclass(frozen=True)
class Proposal:
    """What a proposer proposes: values (not yet bounded), their sources and why."""

    values: dict[str, Any]
    """A value for every hyperparameter key."""
    sources: dict[str, ParamSource]
    """Where each value came from."""
    reason: str
    """What happened, in words (the propose trace event's message)."""
    clamps: list[ClampRecord] = field(default_factory=list)
    """Values the proposer already had bounded."""
    data: dict[str, Any] = field(default_factory=dict)
    """Details for the trace (raw text, timings, notes, a fallback flag)."""

    @classmethod
    def uniform(
        cls, values: Mapping[str, Any], source: ParamSource, reason: str, **data: Any
    ) -> Proposal:
        """A proposal whose every value comes from the same ``source``."""
        return cls(dict(values), dict.fromkeys(HYPERPARAM_KEYS, source), reason, data=data)

    @classmethod
    def prior(cls, task: TaskKind, reason: str, **data: Any) -> Proposal:
        """The task prior for every key, with ``reason`` (a fallback sets ``fallback=True``)."""
        return cls.uniform(TASK_PRIORS[task].model_dump(), ParamSource.PRIOR, reason, **data)

    def within(self, scope: TrainingScope | None, task: TaskKind) -> Proposal:
        """This proposal with a trained proposer's held values applied (`TrainingScope`).

        A held sampling value is set to the value its training data held; a held budget
        (``max_tokens``) is taken from the task prior. The trace data lists them under
        ``held_keys`` and ``prior_keys``.
        """
        if scope is None:
            return self
        proposal, held = self, scope.held_sampling()
        if held:
            written = ", ".join(f"{key} {held[key]:g}" for key in HYPERPARAM_KEYS if key in held)
            note = f"{written} as its training data held {'them' if len(held) > 1 else 'it'}"
            proposal = self._replaced(held, ParamSource.FIXED, note, "held_keys")
        return proposal.with_prior_for(
            scope.budgets(), task, "a budget its training data held fixed"
        )

    def with_prior_for(self, keys: Iterable[str], task: TaskKind, why: str) -> Proposal:
        """This proposal with ``keys`` taken from the task prior, saying ``why`` in a note.

        The trace data lists them under ``prior_keys``.
        """
        wanted = set(keys)
        prior = TASK_PRIORS[task].model_dump()
        values = {key: prior[key] for key in HYPERPARAM_KEYS if key in wanted}
        note = f"{', '.join(values)} from the {task.value} prior ({why})"
        return self._replaced(values, ParamSource.PRIOR, note, "prior_keys")

    def _replaced(
        self, values: Mapping[str, Any], source: ParamSource, note: str, listed_as: str
    ) -> Proposal:
        """``values`` set from ``source`` (their clamps dropped), with ``note`` in the trace."""
        if not values:
            return self
        return Proposal(
            values={**self.values, **values},
            sources={**self.sources, **dict.fromkeys(values, source)},
            reason=f"{self.reason}; {note}",
            clamps=[clamp for clamp in self.clamps if clamp.key not in values],
            data={
                **self.data,
                "notes": [*self.data.get("notes", []), note],
                listed_as: list(values),
            },
        )


ProposalSteps = Generator[Call, CallResult, Proposal]
"""A proposer's logic: yields model calls, receives their results, returns the proposal."""


class ProposerSettings(BaseModel):
    """A base for proposers' settings types: unknown keys are errors; none by default."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Proposer(ABC):
    """Chooses a run's first configuration. Subclasses set ``name`` and ``settings_type``.

    An instance may serve many runs at once (runs without options share one per class): keep
    per-run state in `propose`'s generator, never on the instance.
    """

    name: ClassVar[str]
    """The registry name."""
    settings_type: ClassVar[type[BaseModel]] = ProposerSettings
    """Its settings (the run's ``proposer_options`` under its name), unknown keys forbidden."""

    def __init__(self, settings: BaseModel | None = None) -> None:
        """Create the proposer with its settings (defaults when None)."""
        self.settings = settings if settings is not None else self.settings_type()

    @classmethod
    def from_context(cls, context: HAGContext, name: str) -> Proposer:
        """The proposer registered as ``name``, with the settings of a run.

        Raises:
            InvalidSettingsError: When ``proposer_options`` do not fit the settings type.
        """
        # A setting named like a run field (``head_path``, ``fixed_params``) is read from the run
        # first, so those fields and their HAG_* variables keep working; options override them.
        values = {}
        for setting in _run_fields(cls, type(context)):
            if getattr(context, setting) is not None:
                values[setting] = getattr(context, setting)
        values.update(context.proposer_options.get(name, {}))
        if not values:
            return _with_defaults(cls)
        return cls(validated_settings(cls, values))

    @abstractmethod
    def propose(self, request: ProposalRequest) -> ProposalSteps:
        """Yield the model calls needed, then return the proposal."""


@functools.cache
def _run_fields(cls: type[Proposer], context_type: type[BaseModel]) -> frozenset[str]:
    # The settings named like a run field; computed once per proposer class.
    return frozenset(cls.settings_type.model_fields.keys() & context_type.model_fields.keys())


@functools.cache
def _with_defaults(cls: type[Proposer]) -> Proposer:
    # Most runs give no options: one shared instance per class spares validating them per run.
    return cls(validated_settings(cls, {}))


def validated_settings(cls: type[Proposer], values: Mapping[str, Any]) -> BaseModel:
    """``values`` as proposer ``cls``'s settings.

    Raises:
        InvalidSettingsError: Naming the option (``proposer_options.NAME.KEY``) and what is
            wrong.
    """
    try:
        return cls.settings_type.model_validate(dict(values))
    except ValidationError as exc:
        owner = f"by proposer {cls.name!r}"
        raise invalid_setting(exc, f"proposer_options.{cls.name}.", owner=owner) from None


# -- the registry ----------------------------------------------------------------------------


def proposer_class(name: str) -> type[Proposer]:
    """The class registered under ``name``, imported on first use.

    Raises:
        ConfigurationError: For an unknown name (listing the valid ones) or a plug-in that
            needs a missing package.
    """
    cls: type[Proposer] = PROPOSERS.get(name)
    return cls


def proposer_for(context: HAGContext) -> Proposer:
    """The run's proposer with its settings, built (and so checked) once per context.

    A run that names no proposer gets ``learned`` when it gives a head (``head_path``), else its
    backend's default (`Backend.default_proposer`: ``self-tuned`` on a backend given a proposer
    model, else the task prior).

    Raises:
        InvalidSettingsError: For options that do not fit its settings type, or a ``fixed``
            configuration outside the bounds.
        ConfigurationError: For a proposer that needs a missing package.
    """
    if context._proposer is None:
        name, context._proposer_reason = _chosen(context)
        context._proposer = proposer_class(name).from_context(context, name)
    proposer: Proposer = context._proposer
    return proposer


def default_reason(context: HAGContext) -> str | None:
    """Why the run's proposer was chosen for it, when the run named none (after `proposer_for`)."""
    reason: str | None = context._proposer_reason
    return reason


def _chosen(context: HAGContext) -> tuple[str, str | None]:
    # The proposer named; else the one the run's settings point to; else the backend's default.
    if context.proposer is not None:
        return context.proposer, None
    if context.head_path:
        return "learned", "a learned head was given (head_path)"
    choice = resolve_backend(context).default_proposer()
    return choice.name, choice.reason


__all__ = [
    "ENTRY_POINT_GROUP",
    "PROPOSERS",
    "Proposal",
    "ProposalRequest",
    "ProposalSteps",
    "Proposer",
    "ProposerName",
    "ProposerSettings",
    "proposer_class",
    "proposer_for",
    "proposer_names",
    "register_proposer",
    "validated_settings",
]
