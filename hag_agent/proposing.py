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
import importlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from hag_agent.errors import ConfigurationError, InvalidSettingsError, first_error
from hag_agent.hyperparameters import HYPERPARAM_KEYS, ClampRecord, DecodingBounds, ParamSource
from hag_agent.node_driver import Call, CallResult
from hag_agent.tasks import TaskKind

if TYPE_CHECKING:
    from hag_agent.context import HAGContext

ENTRY_POINT_GROUP = "hag_agent.proposers"


@dataclass(frozen=True)
class ProposalRequest:
    """What a proposer is asked to propose for: one turn's prompt, in its run."""

    prompt: str
    """The turn's prompt."""
    task: TaskKind
    """The turn's task kind (pinned or classified)."""
    bounds: DecodingBounds
    """The run's bounds policy (the node applies it again to whatever is proposed)."""
    seed: int | None = None
    """The run's sampling seed."""
    case_id: str | None = None
    """The case's id when a suite is run (the evaluation harness), else None."""

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


ProposalSteps = Generator[Call, CallResult, Proposal]
"""A proposer's logic: yields model calls, receives their results, returns the proposal."""


class ProposerSettings(BaseModel):
    """A base for proposers' settings types: unknown keys are errors; none by default."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Proposer(ABC):
    """Chooses a run's first configuration. Subclasses set ``name`` and ``settings_type``."""

    name: ClassVar[str]
    """The registry name."""
    settings_type: ClassVar[type[BaseModel]] = ProposerSettings
    """Its settings (the run's ``proposer_options`` under its name), unknown keys forbidden."""
    context_fields: ClassVar[Mapping[str, str]] = {}
    """Settings read from the run's own fields first (setting -> `HAGContext` field), so
    ``head_path`` and ``fixed_params`` keep working; ``proposer_options`` override them."""

    def __init__(self, settings: BaseModel | None = None) -> None:
        """Create the proposer with its settings (defaults when None)."""
        self.settings = settings if settings is not None else self.settings_type()

    @classmethod
    def from_context(cls, context: HAGContext) -> Proposer:
        """The proposer with the settings of a run.

        Raises:
            InvalidSettingsError: When ``proposer_options`` do not fit the settings type.
        """
        fields = ((key, getattr(context, name)) for key, name in cls.context_fields.items())
        values = {key: value for key, value in fields if value is not None}
        values.update(context.proposer_options.get(context.proposer, {}))
        if not values:
            return _with_defaults(cls)
        return cls(validated_settings(cls, values))

    @abstractmethod
    def propose(self, request: ProposalRequest) -> ProposalSteps:
        """Yield the model calls needed, then return the proposal."""


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
        where, message = first_error(exc, "settings")
        raise InvalidSettingsError(
            f"proposer_options.{cls.name}.{where}",
            exc.errors()[0].get("input"),
            f"a valid setting of proposer {cls.name!r}",
            message,
        ) from None


# -- the registry ----------------------------------------------------------------------------

# Built-ins by import path, in the order reports list them; imported on first use only.
_BUILTIN: dict[str, str] = {
    "default": "hag_agent.proposers.default:DefaultProposer",
    "random": "hag_agent.proposers.random_draw:RandomProposer",
    "prior": "hag_agent.proposers.prior:PriorProposer",
    "self": "hag_agent.proposers.self_proposal:SelfProposer",
    "self-tuned": "hag_agent.proposers.self_proposal:TunedSelfProposer",
    "learned": "hag_agent.proposers.learned:LearnedProposer",
    "oracle": "hag_agent.proposers.oracle:OracleProposer",
    "fixed": "hag_agent.proposers.fixed:FixedProposer",
}
_registered: dict[str, type[Proposer]] = {}
_lock = threading.Lock()


def register_proposer(name: str, cls: type[Proposer]) -> None:
    """Register a proposer class under a name (overrides a built-in of the same name)."""
    with _lock:
        _registered[name] = cls


def proposer_names() -> list[str]:
    """Every known proposer name: built-ins in report order, then the others sorted."""
    others = set(_registered) | {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return [*_BUILTIN, *sorted(others - set(_BUILTIN))]


def unknown_proposer_message(name: str) -> str:
    """Why ``name`` is no proposer, listing the valid ones."""
    return f"unknown proposer {name!r}; valid proposers: {', '.join(proposer_names())}"


def is_proposer(name: str) -> bool:
    """Whether ``name`` is a known proposer (built-ins answer without scanning entry points)."""
    return name in _BUILTIN or name in _registered or name in proposer_names()


def check_proposer_name(name: str) -> str:
    """``name`` if it is a known proposer (a pydantic validator for `ProposerName`).

    Raises:
        ValueError: Naming the valid proposers.
    """
    if not is_proposer(name):
        raise ValueError(unknown_proposer_message(name))
    return name


def proposer_class(name: str) -> type[Proposer]:
    """The class registered under ``name``, imported on first use.

    Raises:
        ConfigurationError: For an unknown name (listing the valid ones) or a plug-in that
            needs a missing package.
    """
    with _lock:
        if name in _registered:
            return _registered[name]
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            loaded: type[Proposer] = ep.load()
            register_proposer(name, loaded)
            return loaded
    if name not in _BUILTIN:
        raise ConfigurationError(unknown_proposer_message(name))
    module_name, _, attr = _BUILTIN[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(f"proposer {name!r} needs a missing package: {exc}") from exc
    builtin: type[Proposer] = getattr(module, attr)
    register_proposer(name, builtin)
    return builtin


def proposer_for(context: HAGContext) -> Proposer:
    """The run's proposer with its settings, built once per context.

    Raises:
        ConfigurationError: For an unknown proposer.
        InvalidSettingsError: For options that do not fit its settings type.
    """
    if context._proposer is None:
        context._proposer = proposer_class(context.proposer).from_context(context)
    proposer: Proposer = context._proposer
    return proposer


__all__ = [
    "ENTRY_POINT_GROUP",
    "Proposal",
    "ProposalRequest",
    "ProposalSteps",
    "Proposer",
    "ProposerSettings",
    "check_proposer_name",
    "is_proposer",
    "proposer_class",
    "proposer_for",
    "proposer_names",
    "register_proposer",
    "unknown_proposer_message",
    "validated_settings",
]
