"""The space a learned head predicts each hyperparameter in, and the way back.

Each of the six values is regressed in a space where averaging and a straight line make sense:

| key                | predicted as        | back                                        |
|--------------------|---------------------|---------------------------------------------|
| temperature        | the value           | rounded to 3 decimals                       |
| top_p              | the value           | rounded to 3 decimals                       |
| top_k              | log(1 + k)          | round(k); above `TOP_K_OFF_ABOVE`: 0 (off)  |
| min_p              | the value           | rounded to 3 decimals                       |
| repetition_penalty | log(value)          | rounded to 3 decimals                       |
| max_tokens         | log(value)          | rounded to an integer                       |

top_k 0 means off, the widest setting, so it is encoded as `TOP_K_OFF_AS` (one doubling past the
search ladder's widest rung, 160); a prediction above `TOP_K_OFF_ABOVE` (halfway between 160 and
320 in log space) decodes to off. The bounds policy clamps the decoded values afterwards.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

from hag_agent.hyperparameters import HYPERPARAM_KEYS, HyperParams

TOP_K_OFF_AS = 320
"""The top_k that 0 (off) stands for when predicting."""
TOP_K_OFF_ABOVE = math.sqrt(160 * TOP_K_OFF_AS)
"""A predicted top_k above this decodes to 0 (off)."""


def encode(params: HyperParams | Mapping[str, float | int]) -> NDArray[np.float64]:
    """One configuration as its six regression targets, in `HYPERPARAM_KEYS` order."""
    values = params.model_dump() if isinstance(params, HyperParams) else dict(params)
    top_k = float(values["top_k"]) or TOP_K_OFF_AS
    return np.array(
        [
            float(values["temperature"]),
            float(values["top_p"]),
            math.log1p(top_k),
            float(values["min_p"]),
            math.log(float(values["repetition_penalty"])),
            math.log(float(values["max_tokens"])),
        ],
        dtype=np.float64,
    )


def decode(targets: NDArray[np.float64]) -> dict[str, float | int]:
    """Six predicted targets back as values (not yet bounded: `DecodingBounds.clamp` does that)."""
    temperature, top_p, log_top_k, min_p, log_penalty, log_max_tokens = (float(t) for t in targets)
    top_k = math.expm1(min(log_top_k, 50.0))
    values: dict[str, float | int] = {
        "temperature": round(temperature, 3),
        "top_p": round(top_p, 3),
        "top_k": 0 if top_k > TOP_K_OFF_ABOVE else max(1, round(top_k)),
        "min_p": round(min_p, 3),
        "repetition_penalty": round(math.exp(min(log_penalty, 50.0)), 3),
        "max_tokens": max(1, round(math.exp(min(log_max_tokens, 50.0)))),
    }
    assert tuple(values) == HYPERPARAM_KEYS
    return values


__all__ = ["TOP_K_OFF_ABOVE", "TOP_K_OFF_AS", "decode", "encode"]
