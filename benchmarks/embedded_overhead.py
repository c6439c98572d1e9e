"""What HAG costs on the embedded default (llama.cpp in process, SmolLM2-135M-Instruct).

Over a dozen prompts of mixed tasks, with a fixed seed: the median wall time of plain generation
under default params, of HAG without critique, and of HAG with critique, with the ratios; the
model load time; and the peak resident memory of the process.
Targets: HAG without critique <= 1.3x plain generation; load <= 2 s; peak RSS <= 600 MB.

    python benchmarks/embedded_overhead.py [--rounds 1] [--threads 1]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

from langchain_core.messages import HumanMessage

from hag_agent import HAGRunnable
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


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="passes over the prompts")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    backend = EmbeddedBackend(EmbeddedOptions(n_threads=args.threads))
    load_s = backend.load()
    no_critique = HAGRunnable(model=backend, critique=False, seed=SEED)
    with_critique = HAGRunnable(model=backend, critique=True, seed=SEED)

    plain: list[float] = []
    hag: list[float] = []
    hag_critique: list[float] = []
    tokens = {"plain": 0, "hag": 0, "hag+critique": 0}
    attempts = 0
    proposal_s: list[float] = []
    answer_s: list[float] = []
    for _ in range(args.rounds):
        for prompt in PROMPTS:
            start = time.perf_counter()
            generation = backend.generate(
                GenerationRequest([HumanMessage(prompt)], DEFAULT_PARAMS, seed=SEED)
            )
            plain.append(time.perf_counter() - start)
            tokens["plain"] += generation.completion_tokens or 0

            start = time.perf_counter()
            result = no_critique.invoke(prompt)
            hag.append(time.perf_counter() - start)
            proposal_s.extend(e.data["latency_s"] for e in result.trace if "latency_s" in e.data)
            answer_s.extend(a.latency_s for a in result.attempts)
            tokens["hag"] += sum(a.completion_tokens or 0 for a in result.attempts)

            start = time.perf_counter()
            result = with_critique.invoke(prompt)
            hag_critique.append(time.perf_counter() - start)
            tokens["hag+critique"] += sum(a.completion_tokens or 0 for a in result.attempts)
            attempts += len(result.attempts)

    p, h, c = statistics.median(plain), statistics.median(hag), statistics.median(hag_critique)
    runs = len(plain)
    print(
        f"prompts: {runs} ({len(PROMPTS)} x {args.rounds} rounds), seed {SEED}, "
        f"threads {args.threads}"
    )
    print(f"model load:                      {load_s:6.2f} s    (target <= 2 s)")
    print(f"plain generation, default params: median {p:6.2f} s   answer tokens {tokens['plain']}")
    print(f"HAG without critique:             median {h:6.2f} s   answer tokens {tokens['hag']}")
    print(
        f"HAG with critique:                median {c:6.2f} s   "
        f"answer tokens {tokens['hag+critique']}"
        f"   attempts/request {attempts / runs:.2f}"
    )
    print(
        f"  of which: proposal call median {statistics.median(proposal_s):.2f} s, "
        f"answer generation median {statistics.median(answer_s):.2f} s"
    )
    print(f"ratio HAG without critique / plain: {h / p:.2f}x   (target <= 1.3x)")
    print(f"ratio HAG with critique / plain:    {c / p:.2f}x")
    print(f"peak RSS: {peak_rss_mb():.0f} MB   (target <= 600 MB)")


if __name__ == "__main__":
    main()
