"""Proposer ``fitted-prior``: the configuration refitted for the turn's task kind on search data.

It reads a file from ``hag-agent train prior`` (once per process, again when it changes): for
each task kind, the one configuration with the best mean score over that kind's search cases.
It ignores the query, as the shipped prior does, so it is the baseline a per-query proposer has
to beat on the same data. A kind the file has no fit for, or a file that cannot be read, gets
the shipped task prior, with the reason traced. A budget the search held (``max_tokens``) comes
from the task prior, as for the trained proposers; every sampling value is the fitted
configuration's own, even where the grid's other configurations held it (a grid scores the task
prior with its own min_p, and that configuration can be the one fitted).
"""

from __future__ import annotations

from pathlib import Path

from hag_agent.data.fitted_priors import read_fitted_priors
from hag_agent.errors import HAGInputError
from hag_agent.hyperparameters import ParamSource
from hag_agent.proposing import (
    Proposal,
    ProposalRequest,
    ProposalSteps,
    Proposer,
    ProposerSettings,
)


class FittedPriorSettings(ProposerSettings):
    """Proposer ``fitted-prior``'s settings."""

    priors_file: Path
    """The fitted priors (``hag-agent train prior``)."""


class FittedPriorProposer(Proposer):
    """The task kind's configuration fitted on search records; no model call."""

    name = "fitted-prior"
    settings_type = FittedPriorSettings
    settings: FittedPriorSettings

    def propose(self, request: ProposalRequest) -> ProposalSteps:
        """Return the fitted configuration of ``request.task``."""
        path, task = self.settings.priors_file, request.task.value
        try:
            priors = read_fitted_priors(path)
        except HAGInputError as exc:
            reason = f"fitted priors unusable: {exc}; fallback to the {task} prior"
            return Proposal.prior(request.task, reason, fallback=True, priors=str(path))
        fit = priors.tasks.get(request.task)
        if fit is None:
            reason = f"{path} has no fit for {task} requests; the {task} prior"
            return Proposal.prior(request.task, reason, priors=str(path))
        reason = (
            f"the configuration fitted for {task} on {fit.cases} search cases (mean {fit.score:.3f}"
            f" of {fit.compared} compared)"
        )
        proposal = Proposal.uniform(
            fit.params.model_dump(), ParamSource.FIXED, reason, priors=str(path)
        )
        why = "a budget the search held fixed"
        return proposal.with_prior_for(priors.scope.budgets(), request.task, why)
        yield  # pragma: no cover - makes this function a generator


__all__ = ["FittedPriorProposer", "FittedPriorSettings"]
