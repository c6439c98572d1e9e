"""Proposer ``fixed``: the caller's configuration (``fixed_params``; decoder defaults unset)."""

from __future__ import annotations

from hag_agent.context import HAGContext
from hag_agent.hyperparameters import HyperParams, ParamSource
from hag_agent.proposing import (
    Proposal,
    ProposalRequest,
    ProposalSteps,
    Proposer,
    ProposerSettings,
)
from hag_agent.tasks import DEFAULT_PARAMS


class FixedSettings(ProposerSettings):
    """Proposer ``fixed``'s settings."""

    fixed_params: HyperParams | None = None
    """The configuration (also the run's ``fixed_params``); None: the decoder defaults."""


class FixedProposer(Proposer):
    """The configuration the caller fixed."""

    name = "fixed"
    settings_type = FixedSettings
    settings: FixedSettings

    @classmethod
    def from_context(cls, context: HAGContext, name: str) -> Proposer:
        """The proposer with the run's configuration, which must lie within the bounds.

        Raises:
            InvalidSettingsError: For a value outside the bounds (the caller's values are never
                clamped).
        """
        proposer = super().from_context(context, name)
        assert isinstance(proposer.settings, FixedSettings)
        if proposer.settings.fixed_params is not None:
            context.bounds.check(proposer.settings.fixed_params.model_dump(), what="fixed")
        return proposer

    def propose(self, request: ProposalRequest) -> ProposalSteps:
        """Return the fixed configuration; no model call."""
        fixed = self.settings.fixed_params or DEFAULT_PARAMS
        return Proposal.uniform(fixed.model_dump(), ParamSource.FIXED, "fixed by the caller")
        yield  # pragma: no cover - makes this function a generator


__all__ = ["FixedProposer", "FixedSettings"]
