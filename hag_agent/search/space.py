"""Where and how hard the search looks: the ladders, the coarse grid and the per-case settings."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hag_agent.data.suites import SuiteCase
from hag_agent.hyperparameters import DecodingBounds, HyperParams
from hag_agent.tasks import DEFAULT_PARAMS, TASK_PRIORS

SEARCH_KEYS: tuple[str, ...] = ("temperature", "top_p", "top_k", "repetition_penalty")
"""The four hyperparameters the paper searches (and generates)."""


def _order(key: str, value: float) -> float:
    """Sort position of a value on its ladder: top_k 0 (off) is the widest, after every k."""
    return math.inf if key == "top_k" and value == 0 else float(value)


def _tenths(low: int, high: int) -> tuple[float, ...]:
    return tuple(round(i / 10, 1) for i in range(low, high + 1))


class SearchSpace(BaseModel):
    """The ladders the search moves along and the coarse grid it starts from.

    Each ladder lists one parameter's values in increasing order (top_k 0, meaning off, counts
    as the widest and comes last). Coarse values must lie on their ladder.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    ladders: dict[str, tuple[float, ...]] = Field(
        default_factory=lambda: {
            "temperature": _tenths(0, 15),
            "top_p": (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0),
            "top_k": (1, 5, 10, 20, 40, 80, 160, 0),
            "repetition_penalty": (1.0, 1.05, 1.1, 1.15, 1.2, 1.3, 1.4, 1.5),
        }
    )
    """The fine values of each searched parameter (stage two's steps)."""
    coarse: dict[str, tuple[float, ...]] = Field(
        default_factory=lambda: {
            "temperature": (0.2, 0.7, 1.2),
            "top_p": (0.7, 0.9, 1.0),
            "top_k": (10, 40, 0),
            "repetition_penalty": (1.0, 1.2),
        }
    )
    """The stage-one grid: the product of these values."""
    min_p: float = Field(default=0.0, ge=0.0, le=1.0)
    """The min_p every searched configuration holds."""

    @model_validator(mode="after")
    def _consistent(self) -> SearchSpace:
        bounds = DecodingBounds()
        for table in ("ladders", "coarse"):
            values_by_key: dict[str, tuple[float, ...]] = getattr(self, table)
            if set(values_by_key) != set(SEARCH_KEYS):
                raise ValueError(f"{table} must have exactly the keys {', '.join(SEARCH_KEYS)}")
            for key, values in values_by_key.items():
                if not values:
                    raise ValueError(f"{table}.{key} is empty")
                for v in values:
                    bounds.check({key: v}, what=f"{table}.{key}")
                order = [_order(key, v) for v in values]
                if order != sorted(set(order)):
                    raise ValueError(f"{table}.{key} must increase (top_k 0 = off comes last)")
        for key, values in self.coarse.items():
            missing = [v for v in values if v not in self.ladders[key]]
            if missing:
                raise ValueError(f"coarse.{key} values {missing} are not on the ladder")
        return self

    def configure(self, base: HyperParams, values: Mapping[str, float]) -> HyperParams:
        """``base`` with the searched values replaced (integers kept integral)."""
        update: dict[str, float | int] = {
            k: int(v) if k == "top_k" else float(v) for k, v in values.items()
        }
        return base.model_copy(update=update)

    def grid(self, base: HyperParams, table: Literal["coarse", "ladders"]) -> list[HyperParams]:
        """Every configuration of a grid, in product order."""
        values_by_key: dict[str, tuple[float, ...]] = getattr(self, table)
        axes = [values_by_key[k] for k in SEARCH_KEYS]
        return [
            self.configure(base, dict(zip(SEARCH_KEYS, combo, strict=True)))
            for combo in itertools.product(*axes)
        ]

    def grid_size(self, table: Literal["coarse", "ladders"]) -> int:
        """How many configurations a grid has."""
        values_by_key: dict[str, tuple[float, ...]] = getattr(self, table)
        return math.prod(len(values_by_key[k]) for k in SEARCH_KEYS)

    def position(self, key: str, value: float) -> int:
        """The ladder index of a value, or of the nearest rung when it is off the ladder."""
        ladder = self.ladders[key]
        if value in ladder:
            return ladder.index(value)
        target = _order(key, value)
        if not math.isfinite(target):  # top_k off, not on this ladder: the widest rung
            return len(ladder) - 1
        return min(range(len(ladder)), key=lambda i: abs(_order(key, ladder[i]) - target))

    def neighbours(self, params: HyperParams, key: str) -> list[HyperParams]:
        """The configurations one ladder step either side of ``params`` along ``key``."""
        ladder = self.ladders[key]
        value = float(getattr(params, key))
        index = self.position(key, value)
        result: list[HyperParams] = []
        if ladder[index] != value:  # off the ladder: its nearest rung is a neighbour too
            result.append(self.configure(params, {key: ladder[index]}))
        for step in (-1, 1):
            j = index + step
            if 0 <= j < len(ladder) and ladder[j] != value:
                result.append(self.configure(params, {key: ladder[j]}))
        return result


class SearchSettings(BaseModel):
    """How hard to search each case."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    samples: int = Field(default=3, ge=1, le=64)
    """K: samples per configuration (seeds ``seed .. seed+K-1``)."""
    coarse_samples: int = Field(default=1, ge=1, le=64)
    """Samples per stage-one configuration (at most K; the first seeds of the K)."""
    keep: int = Field(default=3, ge=1, le=64)
    """Stage-one survivors rescored on K samples."""
    budget: int = Field(default=40, ge=2, le=1_000_000)
    """Maximum evaluations per case (an evaluation = K model calls); at least 2, for the
    default and the prior."""
    coarse_share: float = Field(default=0.5, gt=0.0, le=1.0)
    """The share of the calls left after default and prior that stage one may spend."""
    seed: int = Field(default=0, ge=0)
    """Base seed: sample ``i`` uses ``seed + i``; also draws the stage-one subset."""
    max_tokens: int | None = Field(default=None, ge=1)
    """Held max_tokens for every configuration; None uses the task prior's."""
    space: SearchSpace = Field(default_factory=SearchSpace)
    """Ladders and coarse grid."""

    @model_validator(mode="after")
    def _coarse_at_most_k(self) -> SearchSettings:
        if self.coarse_samples > self.samples:
            raise ValueError("coarse_samples must not exceed samples")
        return self

    def base_params(self, case: SuiteCase) -> HyperParams:
        """The values a case's searched configurations hold fixed (min_p, max_tokens)."""
        prior = TASK_PRIORS[case.task]
        return DEFAULT_PARAMS.model_copy(
            update={"min_p": self.space.min_p, "max_tokens": self.max_tokens or prior.max_tokens}
        )

    def default_params(self, case: SuiteCase) -> HyperParams:
        """`DEFAULT_PARAMS` with the case's held max_tokens."""
        return DEFAULT_PARAMS.model_copy(update={"max_tokens": self.base_params(case).max_tokens})

    def prior_params(self, case: SuiteCase) -> HyperParams:
        """The task prior with the case's held max_tokens."""
        prior = TASK_PRIORS[case.task]
        return prior.model_copy(update={"max_tokens": self.base_params(case).max_tokens})


__all__ = ["SEARCH_KEYS", "SearchSettings", "SearchSpace"]
