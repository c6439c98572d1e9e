"""What the learned proposer head costs per request on the embedded default (SmolLM2-135M).

Per prompt of mixed tasks, interleaved so that load on the machine hits all alike: the head's
cost (one embedding pass over the prompt + the prediction), a plain generation under default
params capped at --max-tokens, and a generated proposal (what proposer ``self`` asks: the
proposal prompt, skeleton-decoded). Then whole HAG turns (critique off) with proposer
``learned`` and ``prior``. Medians, and the head's cost as a fraction of a plain generation
(the median of per-request ratios is the figure least moved by other load on the machine).
Target: <= 10% of a plain generation.

The head is fitted here on the prompts' own embeddings and task priors (its cost does not
depend on what it learned), or read from --head.

    python benchmarks/learned_head_cost.py [--rounds 2] [--max-tokens 64] [--head FILE] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

# The same prompts and seed as the embedded overhead benchmark, so the figures compare.
from embedded_overhead import PROMPTS, SEED  # run as a script from benchmarks/
from langchain_core.messages import HumanMessage

from hag_agent import HAGRunnable
from hag_agent.backends import GenerationRequest
from hag_agent.backends.base import DecisionRequest, OutputConstraint
from hag_agent.backends.embedded import EmbeddedBackend, EmbeddedOptions
from hag_agent.backends.llama_cpp_chat import ChatLlamaCppEmbedded
from hag_agent.classification import classify_by_rules
from hag_agent.learned_head import load_head, load_head_cached, save_head
from hag_agent.proposal import ProposalSchema, proposal_prompt
from hag_agent.tasks import DEFAULT_PARAMS, TASK_PRIORS
from hag_agent.training.head_fitting import fit_vectors


def ms(seconds: float) -> str:
    return f"{1000 * seconds:7.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="passes over the prompts")
    parser.add_argument("--max-tokens", type=int, default=64, help="plain generation's cap")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--head", type=Path, help="a head file (default: fit one here)")
    parser.add_argument(
        "--quick", action="store_true", help="only the head against plain generation"
    )
    args = parser.parse_args()

    load_before = os.getloadavg()
    backend = EmbeddedBackend(EmbeddedOptions(n_threads=args.threads))
    load_s = backend.load()
    assert isinstance(backend.chat_model, ChatLlamaCppEmbedded)
    llama = backend.chat_model.engine().llama
    tasks = [classify_by_rules(p)[0] for p in PROMPTS]
    workdir = Path(tempfile.mkdtemp(prefix="hag-head-bench-"))
    if args.head is None:
        vectors = [backend.embed(p).vector for p in PROMPTS]
        fitted = fit_vectors(
            vectors,
            [t.value for t in tasks],
            [TASK_PRIORS[t] for t in tasks],
            model=backend.embedding_model(),
        )
        head_path = save_head(fitted, workdir / "head.npz")
    else:
        head_path = args.head
    start = time.perf_counter()
    load_head(head_path)
    head_load_s = time.perf_counter() - start

    plain_params = DEFAULT_PARAMS.model_copy(update={"max_tokens": args.max_tokens})
    wall: dict[str, list[float]] = {k: [] for k in ("embed", "predict", "plain", "proposal")}
    plain_tokens: list[int] = []
    turns: dict[str, list[float]] = {"learned": [], "prior": []}
    runnables = {
        name: HAGRunnable(
            model=backend, proposer=name, head_path=str(head_path), critique=False, seed=SEED
        )
        for name in turns
    }
    learned_turns = 0
    for _ in range(args.rounds):
        for prompt, task in zip(PROMPTS, tasks, strict=True):
            start = time.perf_counter()
            vector = backend.embed(prompt).vector
            middle = time.perf_counter()
            load_head_cached(head_path).predict(vector, task)
            wall["embed"].append(middle - start)
            wall["predict"].append(time.perf_counter() - middle)

            start = time.perf_counter()
            generation = backend.generate(
                GenerationRequest([HumanMessage(prompt)], plain_params, seed=SEED)
            )
            wall["plain"].append(time.perf_counter() - start)
            plain_tokens.append(generation.completion_tokens or 0)
            if args.quick:
                continue

            decision = backend.decide(
                DecisionRequest(
                    [HumanMessage(proposal_prompt(task, prompt))],
                    ProposalSchema,
                    purpose="propose",
                    constraint=OutputConstraint.COMPACT_NUMERIC_OBJECT,
                )
            )
            wall["proposal"].append(decision.latency_s)
            for name, runnable in runnables.items():
                start = time.perf_counter()
                result = runnable.invoke(prompt)
                turns[name].append(time.perf_counter() - start)
                if name == "learned":
                    sources = result.attempts[0].sources.values()
                    learned_turns += all(source.value == "learned" for source in sources)

    median = statistics.median
    head = [e + p for e, p in zip(wall["embed"], wall["predict"], strict=True)]
    runs = len(head)
    tokens = [len(llama.tokenize(p.encode("utf-8"))) for p in PROMPTS]
    print(
        f"prompts: {runs} ({len(PROMPTS)} x {args.rounds} rounds), prompt tokens "
        f"{min(tokens)}-{max(tokens)} (median {median(tokens):.0f}), seed {SEED}, "
        f"threads {args.threads}, cpus {os.cpu_count()}"
    )
    print(
        f"machine load average (1 min) before/after: {load_before[0]:.2f} / "
        f"{os.getloadavg()[0]:.2f}"
    )
    print(f"model load {load_s:.2f} s; head file {head_path} read in {ms(head_load_s)}")
    print("wall time per request              median          min")
    rows: list[tuple[str, list[float]]] = [
        ("learned head (embed + predict)", head),
        ("  of which predict", wall["predict"]),
        (f"plain generation (max {args.max_tokens} tokens)", wall["plain"]),
        ("generated proposal (proposer self)", wall["proposal"]),
    ]
    for name, values in rows:
        if values:
            print(f"{name:35s}{ms(median(values))}   {ms(min(values))}")
    print(f"plain generation: {statistics.mean(plain_tokens):.0f} tokens on average")
    # Each request's head and generation ran back to back, under the same load: the median of
    # their ratios is the figure least moved by other work on the machine.
    paired = median(h / g for h, g in zip(head, wall["plain"], strict=True))
    print(
        f"head / plain generation: {paired:.1%} (median of per-request ratios), "
        f"{median(head) / median(wall['plain']):.1%} (ratio of medians)   target <= 10%"
    )
    if args.quick:
        return
    paired = median(h / s for h, s in zip(head, wall["proposal"], strict=True))
    print(
        f"head / generated proposal: {paired:.1%} (median of per-request ratios), "
        f"{median(head) / median(wall['proposal']):.1%} (ratio of medians)"
    )
    print(
        f"HAG turn, critique off (medians): proposer learned {ms(median(turns['learned']))}, "
        f"prior {ms(median(turns['prior']))}; learned params in {learned_turns}/{runs} turns"
    )


if __name__ == "__main__":
    main()
