"""How the harness runs each proposer it compares, and what a proposer's rows depend on.

Every proposer runs through the graph under its registry name (`hag_agent.proposing`), with its
options from `EvalSettings.options_for` and the case id, which ``random`` seeds its draw with and
``oracle`` looks its record up by. ``self-tuned`` runs on the backend whose proposal calls go to
the tuned proposer. The built-ins are listed in `hag_agent.proposers`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from hag_agent.assets import resolve_adapter, resolve_head
from hag_agent.data.suites import SuiteCase
from hag_agent.evaluation.rows import file_digest
from hag_agent.evaluation.settings import EvalSettings
from hag_agent.hyperparameters import HyperParams


def run_settings(name: str, case: SuiteCase, settings: EvalSettings) -> dict[str, Any]:
    """The `HAGContext` settings that make one case's run use proposer ``name``."""
    options = {name: settings.options_for(name)}
    return {"proposer": name, "proposer_options": options, "case_id": case.id}


class ProposerInputs:
    """What a proposer's rows read beyond the case, so a row is redone when that changes.

    The head file's content (``learned``), the tuned adapter's content or served name
    (``self-tuned``), the fitted priors' content (``fitted-prior``), the case's searched
    configuration (``oracle``), and any options given to the proposer (``proposer_options``);
    nothing for the others, whose rows stay reusable.
    """

    def __init__(self, settings: EvalSettings, oracle: Mapping[str, HyperParams]) -> None:
        """Read the fingerprints of the settings' files once."""
        self._files = {
            "learned": file_digest(resolve_head(settings.head_path)),
            "self-tuned": file_digest(resolve_adapter(settings.tuned_proposer)),
            "fitted-prior": file_digest(settings.priors_file),
        }
        self._oracle = oracle
        self._options = {
            name: json.dumps(options, sort_keys=True, default=str)
            for name, options in settings.proposer_options.items()
            if options
        }

    def __call__(self, proposer: str, case_id: str) -> str:
        """The input of proposer ``proposer``'s row of case ``case_id`` ("" for none)."""
        if proposer == "oracle" and case_id in self._oracle:
            read = self._oracle[case_id].model_dump_json()
        else:
            read = self._files.get(proposer, "")
        options = self._options.get(proposer)
        # Rows made without options keep their keys, so earlier runs' rows stay reusable.
        return read if options is None else f"{read}|options:{options}"


__all__ = ["ProposerInputs", "run_settings"]
