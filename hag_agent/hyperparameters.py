"""Decoding hyperparameters, their hard ranges, and the one policy that bounds them.

`HyperParams` enforces vLLM's own ranges (a value outside them is meaningless to any decoder).
`DecodingBounds` is the policy inside those ranges; every value from any source (model proposal,
task prior, user pin, retry) passes through `DecodingBounds.clamp`, which records each change.
User-pinned values are checked with `DecodingBounds.check` instead and rejected, not clamped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hag_agent.errors import InvalidSettingsError

HYPERPARAM_KEYS: tuple[str, ...] = (
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "repetition_penalty",
    "max_tokens",
)
"""The proposal keys, in the order the proposal JSON uses."""

SHORT_NAMES: dict[str, str] = {
    "temperature": "temp",
    "repetition_penalty": "rep",
    "max_tokens": "max",
}
"""Short column labels for the long keys (tables, panels, diagrams); other keys are short."""

INTEGER_KEYS = frozenset({"top_k", "max_tokens"})


class ParamSource(StrEnum):
    """Where one hyperparameter value came from."""

    MODEL = "model"
    PRIOR = "prior"
    LEARNED = "learned"
    PINNED = "pinned"
    FIXED = "fixed"
    RETRY = "retry"


class HyperParams(BaseModel):
    """One decoding configuration. Ranges are vLLM's; the policy lives in `DecodingBounds`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float = Field(ge=0.0, le=2.0, allow_inf_nan=False)
    """Softmax temperature; 0 means greedy."""
    top_p: float = Field(gt=0.0, le=1.0, allow_inf_nan=False)
    """Nucleus sampling mass."""
    top_k: int = Field(ge=0)
    """Top-k cut-off; 0 turns it off."""
    min_p: float = Field(ge=0.0, le=1.0, allow_inf_nan=False)
    """Minimum probability relative to the most likely token."""
    repetition_penalty: float = Field(gt=0.0, allow_inf_nan=False)
    """Multiplicative penalty on tokens already present (1.0 = none)."""
    max_tokens: int = Field(ge=1)
    """Upper bound on generated tokens."""

    def to_proposal_json(self) -> str:
        """The compact JSON proposal text: exactly the HyperParams keys, in order."""
        return self.model_dump_json()

    def key(self) -> tuple[float | int, ...]:
        """A hashable identity, rounded so float noise does not make two configs differ."""
        return tuple(round(v, 4) if isinstance(v, float) else v for v in self.model_dump().values())


class Range(BaseModel):
    """A closed numeric interval used by the bounds policy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    low: float
    """Smallest allowed value."""
    high: float
    """Largest allowed value."""

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if not (math.isfinite(self.low) and math.isfinite(self.high)) or self.low > self.high:
            raise ValueError(f"invalid range [{self.low}, {self.high}]")
        return self

    def describe(self) -> str:
        """The interval in words, e.g. ``[0.0, 2.0]``."""
        return f"[{self.low:g}, {self.high:g}]"


# vLLM's hard limits; a policy may only narrow them.
_HARD_LIMITS: dict[str, tuple[float, float]] = {
    "temperature": (0.0, 2.0),
    "top_p": (1e-3, 1.0),
    "top_k": (0.0, 1_000_000.0),
    "min_p": (0.0, 1.0),
    "repetition_penalty": (1e-3, 10.0),
    "max_tokens": (1.0, 1_000_000.0),
}


class ClampRecord(BaseModel):
    """One value the bounds policy changed, kept in the trace."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    """The hyperparameter."""
    original: Any
    """The value before the policy (may be non-numeric garbage)."""
    value: float | int
    """The value after the policy."""
    bound: str
    """The bound applied, in words."""
    source: ParamSource
    """Where the original value came from."""


class DecodingBounds(BaseModel):
    """The policy every hyperparameter value passes through, whatever its source.

    Defaults follow vLLM's ranges except the repetition penalty ([1.0, 2.0]: below 1 rewards
    repetition) and a max_tokens cap. top_k is either 0 (off) or within ``top_k``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: Range = Range(low=0.0, high=2.0)
    """Allowed temperature."""
    top_p: Range = Range(low=0.05, high=1.0)
    """Allowed nucleus mass (0 is not a distribution)."""
    top_k: Range = Range(low=1, high=200)
    """Allowed top-k when on; 0 (off) is always allowed."""
    min_p: Range = Range(low=0.0, high=0.5)
    """Allowed min-p."""
    repetition_penalty: Range = Range(low=1.0, high=2.0)
    """Allowed repetition penalty."""
    max_tokens: Range = Range(low=1, high=2048)
    """Allowed max_tokens; ``high`` is the policy cap."""

    @model_validator(mode="after")
    def _within_hard_limits(self) -> DecodingBounds:
        for key, (low, high) in _HARD_LIMITS.items():
            rng: Range = getattr(self, key)
            if rng.low < low or rng.high > high:
                raise ValueError(f"bounds for {key} {rng.describe()} exceed [{low:g}, {high:g}]")
        return self

    def describe(self, key: str) -> str:
        """The allowed values of one key, in words."""
        rng: Range = getattr(self, key)
        if key == "top_k":
            return f"0 (off) or [{int(rng.low)}, {int(rng.high)}]"
        if key in INTEGER_KEYS:
            return f"[{int(rng.low)}, {int(rng.high)}]"
        return rng.describe()

    def clamp_value(self, key: str, value: Any) -> float | int | None:
        """Bring one value inside the policy; None when it is not a usable number."""
        number = _as_number(value)
        if number is None:
            return None
        rng: Range = getattr(self, key)
        if key == "top_k" and number <= 0:
            return 0
        clamped = min(max(number, rng.low), rng.high)
        if key in INTEGER_KEYS:
            return round(clamped)
        return float(clamped)

    def clamp(
        self,
        values: Mapping[str, Any],
        sources: Mapping[str, ParamSource],
        fallback: HyperParams,
    ) -> tuple[HyperParams, list[ClampRecord]]:
        """Bound every value, filling unusable ones from ``fallback``.

        Args:
            values: Raw values by key; missing keys come from ``fallback``.
            sources: Where each raw value came from (for the clamp records).
            fallback: Values for missing or non-numeric keys (itself clamped).

        Returns:
            The bounded configuration and one record per value that changed.
        """
        result: dict[str, float | int] = {}
        records: list[ClampRecord] = []
        for key in HYPERPARAM_KEYS:
            original = values.get(key, getattr(fallback, key))
            bounded = self.clamp_value(key, original)
            source = sources.get(key, ParamSource.PRIOR)
            if bounded is None:
                bounded = self.clamp_value(key, getattr(fallback, key))
                assert bounded is not None  # fallback is a valid HyperParams
                records.append(
                    ClampRecord(
                        key=key,
                        original=_jsonable(original),
                        value=bounded,
                        bound="not a finite number: used the fallback",
                        source=source,
                    )
                )
            elif _differs(original, bounded):
                records.append(
                    ClampRecord(
                        key=key,
                        original=_jsonable(original),
                        value=bounded,
                        bound=self.describe(key),
                        source=source,
                    )
                )
            result[key] = bounded
        return HyperParams.model_validate(result), records

    def check(self, values: Mapping[str, Any], *, what: str = "pinned") -> dict[str, float | int]:
        """Validate caller-given values strictly: unknown keys or out-of-bound values raise.

        Args:
            values: Values by key, as the caller gave them.
            what: How to name these values in errors.

        Returns:
            The values, converted to numbers of the right type.

        Raises:
            InvalidSettingsError: Naming the field and its bound.
        """
        checked: dict[str, float | int] = {}
        for key, value in values.items():
            if key not in HYPERPARAM_KEYS:
                raise InvalidSettingsError(
                    key, value, f"one of {', '.join(HYPERPARAM_KEYS)}", f"unknown {what} key"
                )
            number = _as_number(value)
            if number is None or (key in INTEGER_KEYS and number != int(number)):
                kind = "an integer" if key in INTEGER_KEYS else "a finite number"
                raise InvalidSettingsError(key, value, self.describe(key), f"must be {kind}")
            bounded = self.clamp_value(key, number)
            if bounded is None or _differs(number, bounded):
                raise InvalidSettingsError(key, value, self.describe(key), f"{what} value")
            checked[key] = bounded
        return checked


def _as_number(value: Any) -> float | None:
    """Parse a model- or user-given value as a finite float; None if it is not one."""
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, int | float):
            number = float(value)  # OverflowError for an int past float's range
        elif isinstance(value, str):
            number = float(value.strip())
        else:
            return None
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _differs(original: Any, bounded: float | int) -> bool:
    number = _as_number(original)
    return number is None or abs(number - bounded) > 1e-9


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)[:100]


SourceMap = dict[str, ParamSource]
"""Where each of the six values of a configuration came from."""
