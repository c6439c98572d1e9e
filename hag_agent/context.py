"""Per-run settings, passed to the graph as LangGraph's run context (``context_schema``).

Precedence, highest first, written once in `resolve_context`:

1. explicit arguments (per-call settings, e.g. the keys of a HAGRunnable input dict);
2. the run context (values set on the `HAGContext` given to the graph or the HAGRunnable);
3. the environment, ``HAG_<FIELD>`` (e.g. ``HAG_MAX_RETRIES=3``,
   ``HAG_PARAMS='{"max_tokens": 64}'``, ``HAG_BOUNDS__MAX_TOKENS='{"low": 1, "high": 512}'``);
4. the defaults below.

Pinned params merge per key across levels: explicit ``{"top_k": 5}`` over context
``{"max_tokens": 64}`` pins both.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from hag_agent.errors import InvalidSettingsError, invalid_setting
from hag_agent.hyperparameters import DecodingBounds, HyperParams
from hag_agent.proposer_registry import ProposerName
from hag_agent.redaction import masked_options
from hag_agent.tasks import TaskKind

ClassifierName = Literal["llm", "rules"]
CriticName = Literal["signals", "judge"]


class HAGContext(BaseModel):
    """Settings of one run. Build it with `resolve_context` to apply ``HAG_*`` variables."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    max_retries: int = Field(default=2, ge=0, le=10)
    """Retries after the first attempt (0 = one attempt only)."""
    accept_threshold: float = Field(default=0.7, ge=0.0, le=1.0)
    """An attempt scoring at least this is accepted."""
    bounds: DecodingBounds = Field(default_factory=DecodingBounds)
    """The policy every hyperparameter value passes through."""
    classifier: ClassifierName = "rules"
    """``llm`` (structured output, rules as fallback) or ``rules`` (keywords and patterns)."""
    proposer: ProposerName | None = None
    """A registered proposer: ``self`` (the model proposes: HAG), ``prior`` (task prior),
    ``fixed`` (``fixed_params``), ``learned`` (a head trained on search data maps the prompt's
    embedding to params; see ``head_path``), ``default``, ``random``, ``oracle``, ``self-tuned``
    or a plugin's (`hag_agent.proposing`). None: ``learned`` when ``head_path`` is given, else the
    backend's default, the one measured best in quality per cost for its model
    (`Backend.default_proposer`)."""
    proposer_options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Proposers' settings by proposer name, each checked by that proposer's settings type when
    it is the one chosen (e.g. ``{"oracle": {"search_file": "search.jsonl"}}``)."""
    case_id: str | None = None
    """The case's id when a suite is run: proposers that key on the prompt (random, oracle) use
    it instead of the prompt text."""
    head_path: str | None = None
    """The learned head file (``hag-agent train head``) for proposer ``learned``; also
    ``HAG_HEAD_PATH``. Without it, or when it cannot be used, the task prior is used and the
    reason recorded in the trace."""
    critic: CriticName = "signals"
    """``signals`` (objective signals) or ``judge`` (signals plus an LLM judge)."""
    critique: bool = True
    """Critique and retry at all; off means one attempt, accepted."""
    task: TaskKind | None = None
    """A pinned task kind: skips classification."""
    params: dict[str, float] = Field(default_factory=dict)
    """Pinned hyperparameters, by key; they override any proposal and never change on retry."""
    fixed_params: HyperParams | None = None
    """The configuration for proposer ``fixed`` (decoder defaults when unset)."""
    seed: int | None = None
    """Sampling seed passed to every generation call (the caller's, never proposed)."""
    decision_max_tokens: int = Field(default=160, ge=16, le=4096)
    """Token budget for each decision call (classify, propose, judge)."""
    max_prompt_chars: int = Field(default=200_000, ge=1)
    """Longest prompt accepted; longer ones are rejected before any model call."""
    backend: str = "embedded"
    """Backend name in the registry, used when no chat model is given."""
    backend_options: dict[str, Any] = Field(default_factory=dict)
    """Options for the named backend (e.g. ``base_url``, ``model_path``); each also reads its
    own ``HAG_<OPTION>`` variable."""
    answer_options: dict[str, Any] = Field(default_factory=dict, exclude=True)
    """Further arguments of the answer's generation call only, never of a decision call (e.g.
    ``{"stop": ["\\n\\n"]}``); sampling values are never taken from here."""
    chat_model: Any = Field(default=None, exclude=True)
    """A `Backend` or LangChain chat model object; overrides ``backend``."""
    _backend: Any = PrivateAttr(default=None)
    # The run's resolved backend, so the nodes of one run resolve it once, not once each.
    _proposer: Any = PrivateAttr(default=None)
    # The run's proposer with its settings, built (and checked) once by `proposer_for`.
    _proposer_reason: str | None = PrivateAttr(default=None)
    # Why `proposer_for` chose it, when the run named none.

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """Pydantic's repr arguments, with secret backend options (an API key) masked."""
        for name, value in super().__repr_args__():
            if name == "backend_options" and isinstance(value, Mapping):
                value = masked_options(value)
            yield name, value


_MERGED_KEYS = frozenset({"params", "backend_options", "proposer_options", "answer_options"})
# Never read from HAG_* variables: objects (a model; the answer call's arguments, tools
# included), and a case's key (one variable would give every prompt of a process the same
# random draw or oracle record).
_PER_CALL_ONLY = frozenset({"chat_model", "case_id", "answer_options"})
_ENV_PREFIX = "HAG_"


class _EnvironmentSettings(HAGContext, BaseSettings):
    """The same fields read from ``HAG_*`` variables (only the ones set count)."""

    model_config = SettingsConfigDict(
        env_prefix=_ENV_PREFIX,
        env_nested_delimiter="__",
        extra="ignore",
        arbitrary_types_allowed=True,
    )


@lru_cache(maxsize=8)
def _environment_values(snapshot: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    # Keyed by the HAG_* variables themselves, so a changed environment is read again while
    # an unchanged one costs nothing (reading it is ~1 ms, more than the whole graph).
    if not snapshot:
        return {}
    try:
        settings = _EnvironmentSettings()
    except ValidationError as exc:
        raise _settings_error(exc, from_environment=True) from None
    return {k: getattr(settings, k) for k in settings.model_fields_set - _PER_CALL_ONLY}


def environment_snapshot() -> tuple[tuple[str, str], ...]:
    """Every ``HAG_*`` variable and its value, sorted: the key for what was read from them."""
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(_ENV_PREFIX)))


def environment_values() -> dict[str, Any]:
    """The settings given by ``HAG_*`` environment variables."""
    return dict(_environment_values(environment_snapshot()))


def resolve_context(
    explicit: Mapping[str, Any] | None = None,
    context: HAGContext | Mapping[str, Any] | None = None,
) -> HAGContext:
    """Build the run's settings: explicit > run context > environment > default.

    Args:
        explicit: Per-call settings; None values count as not given.
        context: The run context, as a `HAGContext` (only fields set on it count) or a mapping.

    Returns:
        The settings of this run, with pinned params checked against the bounds.

    Raises:
        InvalidSettingsError: For an unknown setting, a bad value (an unknown proposer
            included) or a pinned value out of bounds. A proposer's own options are checked
            when it is built (`hag_agent.proposing.proposer_for`, on a run's start).
    """
    if isinstance(context, HAGContext):
        base = {k: getattr(context, k) for k in context.model_fields_set}
    else:
        base = dict(context or {})
    given = {k: v for k, v in (explicit or {}).items() if v is not None}
    merged = {**environment_values(), **base}
    for layer in (base, given):
        previous = dict(merged)
        merged.update(layer)
        for key in _MERGED_KEYS & previous.keys() & layer.keys():
            merged[key] = {**previous[key], **layer[key]}
    unknown = sorted(set(merged) - set(HAGContext.model_fields))
    if unknown:
        raise InvalidSettingsError(unknown[0], merged[unknown[0]], "", "not a run setting")
    try:
        resolved = HAGContext(**merged)
    except ValidationError as exc:
        raise _settings_error(exc) from None
    check_pinned(resolved)
    return resolved


def check_pinned(context: HAGContext) -> None:
    """Reject pinned params that are outside the bounds (never clamp the caller's).

    The ``fixed`` proposer checks its configuration the same way when it is built.
    """
    context.bounds.check(context.params, what="pinned")


def _settings_error(
    exc: ValidationError, *, from_environment: bool = False
) -> InvalidSettingsError:
    error = invalid_setting(exc)
    if not from_environment:
        return error
    field = f"{_ENV_PREFIX}{error.field.upper()}"
    return InvalidSettingsError(field, error.value, error.bound, error.detail)


__all__ = ["HAGContext", "check_pinned", "resolve_context"]
