"""Turn a critique's direction into the next configuration to try.

Each direction is a small, documented move; pinned keys never move; every result passes the
bounds policy; a configuration already tried is never tried again (the move is repeated, then a
neighbouring move is tried, and if nothing new is left the search is declared exhausted).

| direction           | move                                                          |
|---------------------|---------------------------------------------------------------|
| less_repetition     | repetition_penalty +0.15, temperature -0.2                    |
| longer              | max_tokens x2 (within the cap)                                |
| more_focused        | temperature x0.5, top_p -0.1                                  |
| more_varied         | temperature +0.3, top_p +0.05                                 |
| more_deterministic  | temperature x0.3 (0 below 0.05), top_k down to 1              |
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from pydantic import BaseModel, ConfigDict

from hag_agent.critique import Direction
from hag_agent.hyperparameters import (
    HYPERPARAM_KEYS,
    DecodingBounds,
    HyperParams,
    ParamSource,
)
from hag_agent.tasks import TaskKind

Move = Callable[[dict[str, float]], dict[str, float]]


def _less_repetition(p: dict[str, float]) -> dict[str, float]:
    return {
        "repetition_penalty": p["repetition_penalty"] + 0.15,
        "temperature": p["temperature"] - 0.2,
    }


def _longer(p: dict[str, float]) -> dict[str, float]:
    return {"max_tokens": p["max_tokens"] * 2}


def _more_focused(p: dict[str, float]) -> dict[str, float]:
    return {"temperature": p["temperature"] * 0.5, "top_p": p["top_p"] - 0.1}


def _more_varied(p: dict[str, float]) -> dict[str, float]:
    return {"temperature": p["temperature"] + 0.3, "top_p": p["top_p"] + 0.05}


def _more_deterministic(p: dict[str, float]) -> dict[str, float]:
    temperature = p["temperature"] * 0.3
    top_k = p["top_k"]
    return {
        "temperature": 0.0 if temperature < 0.05 else temperature,
        "top_k": 1 if top_k == 0 else max(1, top_k // 2),
    }


MOVES: dict[Direction, Move] = {
    Direction.LESS_REPETITION: _less_repetition,
    Direction.LONGER: _longer,
    Direction.MORE_FOCUSED: _more_focused,
    Direction.MORE_VARIED: _more_varied,
    Direction.MORE_DETERMINISTIC: _more_deterministic,
}

# When a direction's move yields nothing new, the next candidates to try, in order.
_NEIGHBOURS: dict[Direction, tuple[Direction, ...]] = {
    Direction.LESS_REPETITION: (Direction.MORE_FOCUSED, Direction.MORE_VARIED),
    Direction.LONGER: (Direction.MORE_FOCUSED,),
    Direction.MORE_FOCUSED: (Direction.MORE_DETERMINISTIC, Direction.MORE_VARIED),
    Direction.MORE_VARIED: (Direction.LESS_REPETITION, Direction.MORE_FOCUSED),
    Direction.MORE_DETERMINISTIC: (Direction.MORE_FOCUSED, Direction.LESS_REPETITION),
}

_MAX_REPEATS = 4


class Adjustment(BaseModel):
    """The outcome of one adjustment step."""

    model_config = ConfigDict(extra="forbid")

    params: HyperParams | None
    """The next configuration, or None when nothing new is left to try."""
    sources: dict[str, ParamSource]
    """Where each value came from (changed values are ``retry``)."""
    direction: Direction
    """The direction actually applied (may be a neighbour of the one asked for)."""
    reason: str
    """Why these values, in words."""


def default_direction(task: TaskKind) -> Direction:
    """The direction for a low score with no specific diagnosis."""
    return (
        Direction.MORE_VARIED
        if task in (TaskKind.CREATIVE, TaskKind.CHAT)
        else Direction.MORE_FOCUSED
    )


def _first_untried(
    params: HyperParams,
    move: Move,
    *,
    frozen: set[str],
    bounds: DecodingBounds,
    seen: set[tuple[float | int, ...]],
) -> tuple[HyperParams, int] | None:
    """Apply a move up to `_MAX_REPEATS` times until it gives a configuration not yet tried.

    Returns:
        The new configuration and how many times the move was applied to reach it, or None
        when the move only touches pinned keys or every repeat lands on a tried configuration.
    """
    current: dict[str, float] = {k: float(v) for k, v in params.model_dump().items()}
    for repeat in range(1, _MAX_REPEATS + 1):
        # Rounded so retries read cleanly (0.95, not 0.9500000000000001).
        proposed = {k: round(v, 4) for k, v in move(current).items() if k not in frozen}
        if not proposed:
            return None
        # Each repeat moves on from the clamped values, so a bound stops the drift.
        new_params, _ = bounds.clamp({**current, **proposed}, {}, params)
        current = {k: float(v) for k, v in new_params.model_dump().items()}
        if new_params.key() not in seen:
            return new_params, repeat
    return None


def _applied(
    params: HyperParams,
    new_params: HyperParams,
    sources: Mapping[str, ParamSource],
    asked: Direction,
    candidate: Direction,
    repeats: int,
) -> Adjustment:
    """The adjustment to ``new_params``: changed values marked ``retry``, the reason in words."""
    changed = [k for k in HYPERPARAM_KEYS if getattr(new_params, k) != getattr(params, k)]
    new_sources = {
        k: (ParamSource.RETRY if k in changed else sources.get(k, ParamSource.PRIOR))
        for k in HYPERPARAM_KEYS
    }
    detail = ", ".join(f"{k} {getattr(params, k)} -> {getattr(new_params, k)}" for k in changed)
    via = "" if candidate is asked else f" (via {candidate.value}: {asked.value} gave nothing new)"
    times = "" if repeats == 1 else f" x{repeats}"
    return Adjustment(
        params=new_params,
        sources=new_sources,
        direction=candidate,
        reason=f"{asked.value}{via}{times}: {detail}",
    )


def adjust(
    params: HyperParams,
    sources: Mapping[str, ParamSource],
    direction: Direction,
    *,
    task: TaskKind,
    bounds: DecodingBounds,
    pinned: Iterable[str],
    tried: Iterable[HyperParams],
) -> Adjustment:
    """Compute the next configuration from the last one and a direction.

    Args:
        params: The configuration the critique was about.
        sources: Where each of its values came from.
        direction: The critique's direction (NONE picks a task default).
        task: The task kind.
        bounds: The policy every value passes.
        pinned: Keys the caller pinned; they never change.
        tried: Every configuration already used in this run.

    Returns:
        The next configuration with its provenance, or ``params=None`` when exhausted.
    """
    frozen = set(pinned)
    seen = {p.key() for p in tried}
    asked = direction if direction is not Direction.NONE else default_direction(task)
    for candidate in (asked, *_NEIGHBOURS[asked]):
        found = _first_untried(params, MOVES[candidate], frozen=frozen, bounds=bounds, seen=seen)
        if found is not None:
            new_params, repeats = found
            return _applied(params, new_params, sources, asked, candidate, repeats)
    return Adjustment(
        params=None,
        sources=dict(sources),
        direction=asked,
        reason=f"{asked.value}: every move is pinned, at its bound, or already tried",
    )
