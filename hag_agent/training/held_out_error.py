"""Held-out error of predicted configurations: mean absolute error per hyperparameter.

Both held-out reports use it: a fine-tuned proposer's (`hag_agent.training.held_out`) and a
learned head's (`hag_agent.training.head_evaluation`). Each parameter is compared in its own
units, as the graph would use it against the search's best; top_k compares as a number (0,
meaning off, is 0).
"""

from __future__ import annotations

from collections.abc import Sequence

from hag_agent.hyperparameters import HYPERPARAM_KEYS, HyperParams


def mean_absolute_errors(
    predicted: Sequence[HyperParams], targets: Sequence[HyperParams]
) -> dict[str, float]:
    """Each hyperparameter's mean absolute error of ``predicted`` against ``targets``.

    Args:
        predicted: The configuration used for each case.
        targets: The search's best configuration for each case, in the same order.

    Returns:
        The error by hyperparameter name; empty without cases.

    Raises:
        ValueError: When the two differ in length.
    """
    if len(predicted) != len(targets):
        raise ValueError(f"{len(predicted)} predictions but {len(targets)} targets")
    if not targets:
        return {}
    totals = dict.fromkeys(HYPERPARAM_KEYS, 0.0)
    for used, best in zip(predicted, targets, strict=True):
        values, target = used.model_dump(), best.model_dump()
        for key in HYPERPARAM_KEYS:
            totals[key] += abs(float(values[key]) - float(target[key]))
    return {key: total / len(targets) for key, total in totals.items()}


__all__ = ["mean_absolute_errors"]
