"""Proposers by name: the built-ins by import path, registered ones, and entry points.

A third-party package adds a proposer with an entry point in the ``hag_agent.proposers`` group
whose object is its `hag_agent.proposing.Proposer` subclass. This lookup table is kept apart
from the interface so that a run's settings (`hag_agent.context`) can check a proposer's name
and options without importing the node machinery the interface is written against; classes
are imported only when their proposer is asked for, so the core imports no plug-in.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator

from hag_agent.plugins import PluginRegistry

ENTRY_POINT_GROUP = "hag_agent.proposers"

PROPOSERS: PluginRegistry[Any] = PluginRegistry(
    "proposer",
    ENTRY_POINT_GROUP,
    # Built-ins in the order reports list them.
    {
        "default": "hag_agent.proposers.default:DefaultProposer",
        "random": "hag_agent.proposers.random_draw:RandomProposer",
        "prior": "hag_agent.proposers.prior:PriorProposer",
        "self": "hag_agent.proposers.self_proposal:SelfProposer",
        "self-tuned": "hag_agent.proposers.self_proposal:TunedSelfProposer",
        "learned": "hag_agent.proposers.learned:LearnedProposer",
        "oracle": "hag_agent.proposers.oracle:OracleProposer",
        "fixed": "hag_agent.proposers.fixed:FixedProposer",
        "min-p": "hag_agent.proposers.min_p:MinPProposer",
        "fitted-prior": "hag_agent.proposers.fitted_prior:FittedPriorProposer",
    },
)
"""Every proposer class by name (typed loosely here; `hag_agent.proposing.proposer_class` gives
the `Proposer` type)."""


def register_proposer(name: str, cls: Any) -> None:
    """Register a `Proposer` subclass under a name (overrides a built-in of the same name)."""
    PROPOSERS.register(name, cls)


def proposer_names() -> list[str]:
    """Every known proposer name: built-ins in report order, then the others sorted."""
    return PROPOSERS.names()


def check_proposer_name(name: str) -> str:
    """``name`` if it is a known proposer (the validator of `ProposerName`).

    Raises:
        ValueError: Naming the valid proposers.
    """
    if not PROPOSERS.knows(name):
        raise ValueError(PROPOSERS.unknown(name))
    return name


ProposerName = Annotated[str, AfterValidator(check_proposer_name)]
"""A proposer's name, checked against the registry: the one name type of proposers, for runs,
the command line and the evaluation."""


__all__ = [
    "ENTRY_POINT_GROUP",
    "PROPOSERS",
    "ProposerName",
    "check_proposer_name",
    "proposer_names",
    "register_proposer",
]
