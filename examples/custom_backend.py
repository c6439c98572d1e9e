"""A backend and a proposer of your own, plugged into hag-agent without touching it.

`WordSampler` is a stand-in for your engine: it "answers" by sampling the prompt's own words,
seeded, under temperature, top_p and max_tokens (no model, no network), so the example runs
anywhere. `LengthProposer` chooses a configuration from the prompt's length alone. Both are
registered in process here; a package would declare them as entry points instead:

    [project.entry-points."hag_agent.backends"]
    word-sampler = "my_pkg:create"
    [project.entry-points."hag_agent.proposers"]
    by-length = "my_pkg:LengthProposer"

tests/unit/test_plugin_example.py runs the shipped conformance suite on `WordSampler`.

    python examples/custom_backend.py
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from typing import Any

from hag_agent import (
    Backend,
    Capabilities,
    HAGRunnable,
    ParamSource,
    Proposal,
    ProposalRequest,
    Proposer,
    register_backend,
    register_proposer,
)
from hag_agent.backends import Decision, DecisionRequest, Generation, GenerationRequest
from hag_agent.backends.base import parse_decision
from hag_agent.proposing import ProposalSteps, ProposerSettings
from hag_agent.tasks import TASK_PRIORS, TaskKind


class WordSampler(Backend):
    """Answers with the prompt's words, drawn under the sampling values it is given."""

    name = "word-sampler"
    capabilities = Capabilities(seed=True, reproducible=True, streaming=False)

    async def agenerate(self, request: GenerationRequest) -> Generation:
        words = request.messages[-1].text.split() or ["..."]
        params = request.params
        rng = random.Random(request.seed)
        # Greedy (temperature 0, or a nucleus too small for more than the top word) repeats the
        # words in order; sampling draws from the first top_p share of them.
        greedy = params.temperature == 0 or params.top_p * len(words) < 1
        pool = words[: max(1, round(params.top_p * len(words)))]
        out = [
            words[i % len(words)] if greedy else rng.choice(pool) for i in range(params.max_tokens)
        ]
        return Generation(text=" ".join(out), finish_reason="length", completion_tokens=len(out))

    async def adecide(self, request: DecisionRequest) -> Decision:
        # A real engine decodes under request.constraint; this stand-in answers a chat prior for
        # a proposal and "chat" for anything else, so the graph's parsing is exercised.
        if request.purpose == "propose":
            text = TASK_PRIORS[TaskKind.CHAT].to_proposal_json()
        else:
            text = json.dumps({"task": "chat", "confidence": 0.5})
        return parse_decision(text, request.schema, latency_s=0.0)


def create(options: Mapping[str, Any]) -> WordSampler:
    """The backend factory: a run's ``backend_options`` -> the backend."""
    del options  # this backend has none
    return WordSampler()


class LengthSettings(ProposerSettings):
    """Proposer ``by-length``'s settings."""

    long_prompt: int = 12
    """Prompts of at least this many words get the cooler configuration."""


class LengthProposer(Proposer):
    """Long prompts get a cool, focused configuration; short ones a warmer one."""

    name = "by-length"
    settings_type = LengthSettings
    settings: LengthSettings

    def propose(self, request: ProposalRequest) -> ProposalSteps:
        """No model call: the prompt's length decides."""
        prior = TASK_PRIORS[request.task]
        long = len(request.prompt.split()) >= self.settings.long_prompt
        temperature = 0.2 if long else 0.9
        values = {**prior.model_dump(), "temperature": temperature, "max_tokens": 12}
        reason = f"{'long' if long else 'short'} prompt: temperature {temperature}"
        # A rule, not the model, chose these values: they are recorded as fixed.
        return Proposal.uniform(values, ParamSource.FIXED, reason)
        yield  # pragma: no cover - makes this function a generator


def main() -> None:
    """Register both plug-ins, then run them by name as any user would."""
    register_backend("word-sampler", create)
    register_proposer("by-length", LengthProposer)
    hag = HAGRunnable(backend="word-sampler", proposer="by-length", seed=3, critique=False)
    for prompt in ("Say hi", "Explain in detail why the sky looks blue on a clear afternoon"):
        result = hag.invoke(prompt)
        print(f"{prompt!r} -> {result.text!r}")
        print(f"   temperature {result.params.temperature if result.params else '?'}:", end=" ")
        print(next(e.message for e in result.trace if e.node == "propose"))


if __name__ == "__main__":
    main()
