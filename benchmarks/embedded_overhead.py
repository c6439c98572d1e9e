"""What HAG costs on the embedded default (llama.cpp in process, SmolLM2-135M-Instruct).

For each proposer asked for, over a dozen prompts of mixed tasks with a fixed seed: the wall time
of a HAG turn without critique, and of a plain generation of the same prompt under the params
that turn answered with (same seed, no proposal). Their ratio is what choosing the settings
costs on top of answering with them, whatever the settings are: a plain generation under the
decoder defaults would answer with other settings, at another length, and measure that instead.
The default-params figure is printed too, for reference. Each prompt is measured once per round
after one unmeasured warm-up turn per proposer (loads, the vocabulary scan, the head file).

The first round is reported apart: a process evaluates each task kind's proposal instructions
once, on its first proposal of that kind, and keeps their state (`PrefixStates`); the ratio
lines are the later rounds', a process that has seen every kind, as a chat or a server soon is.
A one-off `hag-agent run` pays the first round's figure.

Targets: self-tuned (the packaged adapter) <= 1.20x, learned (the packaged head) <= 1.05x,
prior <= 1.02x, base self <= 1.30x; model load <= 2 s; peak RSS <= 600 MB.

    python benchmarks/embedded_overhead.py [--proposer prior,self,self-tuned,learned]
        [--rounds 1] [--threads 1]    (rounds after the first)

The last lines, one per proposer, read ``ratio <proposer> / plain: <x.xx>x`` (the sum of the
HAG turns' times over the sum of the plain generations' times).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
from dataclasses import dataclass, field

from langchain_core.messages import HumanMessage

from hag_agent import HAGResult, HAGRunnable
from hag_agent.backends import GenerationRequest
from hag_agent.backends.embedded import EmbeddedBackend, EmbeddedOptions
from hag_agent.tasks import DEFAULT_PARAMS

PROMPTS = [
    "What is 23 + 58?",
    "A farmer has 12 cows and buys 7 more. How many cows does he have?",
    "If all cats are animals and Tom is a cat, is Tom an animal?",
    "A coin is heads up. Bob flips it twice. Is it heads up?",
    "Translate 'where is the train station' into French.",
    "Translate 'I like green apples' into Spanish.",
    "Write a haiku about the moon.",
    "Write a slogan for a tea shop.",
    "Write a Python function that checks if a number is even.",
    "What is the capital of Italy?",
    "Who wrote Romeo and Juliet?",
    "Hi! What should I cook tonight?",
]
SEED = 11
PROPOSERS = ("prior", "self", "self-tuned", "learned")
TARGETS = {"prior": 1.02, "self": 1.30, "self-tuned": 1.20, "learned": 1.05}


@dataclass
class Timings:
    """One proposer's measurements."""

    hag: list[float] = field(default_factory=list)
    plain: list[float] = field(default_factory=list)
    proposal: list[float] = field(default_factory=list)
    deferred: int = 0

    def ratio(self) -> float:
        return sum(self.hag) / sum(self.plain)

    def per_prompt(self) -> list[float]:
        return [h / p for h, p in zip(self.hag, self.plain, strict=True)]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def runnable_for(proposer: str, backend: EmbeddedBackend, tuned: EmbeddedBackend) -> HAGRunnable:
    """The HAG turn of one proposer: the packaged adapter or head where it needs one."""
    if proposer == "self-tuned":
        return HAGRunnable(model=tuned, proposer=proposer, critique=False, seed=SEED)
    if proposer == "learned":
        return HAGRunnable(
            model=backend, proposer=proposer, head_path="builtin", critique=False, seed=SEED
        )
    return HAGRunnable(model=backend, proposer=proposer, critique=False, seed=SEED)


def proposal_seconds(result: HAGResult) -> float:
    """The propose node's own model time: the decision call's or the embedding pass's."""
    event = next(e for e in result.trace if e.node == "propose")
    return float(event.data.get("latency_s", event.data.get("embed_s", 0.0)))


def measure(
    proposer: str, backend: EmbeddedBackend, tuned: EmbeddedBackend, rounds: int
) -> tuple[Timings, Timings]:
    """The first round's timings, and the later rounds'."""
    runnable = runnable_for(proposer, backend, tuned)
    runnable.invoke(PROMPTS[0])  # warm-up: loads, the vocabulary scan, the head file
    first, timings = Timings(), Timings()
    for round_ in range(1 + rounds):
        for prompt in PROMPTS:
            into = first if round_ == 0 else timings
            start = time.perf_counter()
            result = runnable.invoke(prompt)
            into.hag.append(time.perf_counter() - start)
            into.proposal.append(proposal_seconds(result))
            event = next(e for e in result.trace if e.node == "propose")
            into.deferred += bool(event.data.get("outside_training"))
            params = result.attempts[-1].params
            start = time.perf_counter()
            backend.generate(GenerationRequest([HumanMessage(prompt)], params, seed=SEED))
            into.plain.append(time.perf_counter() - start)
    return first, timings


def default_params_median(backend: EmbeddedBackend) -> float:
    times = []
    for prompt in PROMPTS:
        start = time.perf_counter()
        backend.generate(GenerationRequest([HumanMessage(prompt)], DEFAULT_PARAMS, seed=SEED))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proposer", default=",".join(PROPOSERS), help="comma-separated")
    parser.add_argument("--rounds", type=int, default=1, help="passes over the prompts")
    parser.add_argument("--threads", type=int, default=1, help="threads generating")
    parser.add_argument(
        "--batch-threads", type=int, help="threads reading prompts (default: the backend's)"
    )
    args = parser.parse_args()
    proposers = [name.strip() for name in args.proposer.split(",") if name.strip()]

    threads: dict[str, int] = {"n_threads": args.threads}
    if args.batch_threads:
        threads["n_threads_batch"] = args.batch_threads
    backend = EmbeddedBackend(EmbeddedOptions.model_validate(threads))
    load_s = backend.load()
    tuned_options = {**threads, "proposer_lora_path": "builtin"}
    tuned = EmbeddedBackend(EmbeddedOptions.model_validate(tuned_options))
    measured = {name: measure(name, backend, tuned, args.rounds) for name in proposers}
    timings = {name: later for name, (_, later) in measured.items()}
    default_median = default_params_median(backend)

    load = os.getloadavg()[0]
    print(
        f"prompts: {len(PROMPTS)} x {args.rounds} rounds after the first, seed {SEED}, "
        f"threads {args.threads} "
        f"generating and {backend.options.n_threads_batch or os.cpu_count()} reading prompts, "
        f"load average at the end {load:.2f}"
    )
    print(f"model load: {load_s:.2f} s (target <= 2 s)")
    print(f"plain generation under the decoder defaults: median {default_median:.2f} s")
    for name, t in timings.items():
        quartiles = statistics.quantiles(t.per_prompt(), n=4)
        print(
            f"{name:>10}: HAG median {statistics.median(t.hag):.2f} s, plain under its params "
            f"median {statistics.median(t.plain):.2f} s, proposal median "
            f"{1000 * statistics.median(t.proposal):.0f} ms, per-prompt ratio quartiles "
            f"{quartiles[0]:.2f} / {quartiles[1]:.2f} / {quartiles[2]:.2f}, "
            f"deferred to the prior {t.deferred}/{len(t.hag)}"
        )
    print(f"peak RSS: {peak_rss_mb():.0f} MB (target <= 600 MB)")
    for name, (first, _) in measured.items():
        print(
            f"first round, each task kind's instructions read for the first time: {name} "
            f"{first.ratio():.2f}x, proposal median "
            f"{1000 * statistics.median(first.proposal):.0f} ms"
        )
    for name, t in timings.items():
        target = f"   (target <= {TARGETS[name]:.2f}x)" if name in TARGETS else ""
        print(f"ratio {name} / plain: {t.ratio():.2f}x{target}")


if __name__ == "__main__":
    main()
