"""How close the two-stage search gets to an exhaustive grid, and what it costs per case.

On a small case set (default: one case each of arithmetic, coinflip and keywords), run the
search (`hag_agent.search.engine.evaluate_case` with `TwoStageSearch`) and then score every
configuration of the same ladder grid on the same K seeds (`exhaustive_case`). Prints, per case
and on average: the fraction of the exhaustive optimum the search reached (search best / grid
best), the share of the default-to-optimum gap it closed, the fraction of the grid's evaluations
it spent, and its cost (model calls, wall time). Samples depend only on (prompt, configuration,
seed), so the grid reuses the search's samples instead of drawing them again; its cost is reported
as its nominal calls and the time those would take at the search's measured mean latency.

    python benchmarks/search_vs_exhaustive.py [--cases 3] [--samples 2] [--budget 20]
        [--max-tokens 16] [--backend embedded] [--base-url URL] [--model NAME]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from hag_agent.data.search_records import compare
from hag_agent.data.suites import SuiteCase, make_suite
from hag_agent.hyperparameters import HyperParams
from hag_agent.search.engine import evaluate_case
from hag_agent.search.sampling import Sampler, SampleResult, backend_sampler
from hag_agent.search.space import SearchSettings, SearchSpace
from hag_agent.search.strategies import TwoStageSearch, exhaustive_case

SPACE = SearchSpace(
    ladders={
        "temperature": (0.0, 0.3, 0.6, 1.0),
        "top_p": (0.7, 0.9, 1.0),
        "top_k": (5, 40, 0),
        "repetition_penalty": (1.0, 1.15, 1.3),
    },
    coarse={
        "temperature": (0.3, 1.0),
        "top_p": (0.9, 1.0),
        "top_k": (40, 0),
        "repetition_penalty": (1.0, 1.3),
    },
)
"""108 configurations on the ladders, 16 on the coarse grid (the default is on both)."""


class MemoSampler:
    """Caches samples by (case, configuration, seed) and counts and times the real calls."""

    def __init__(self, inner: Sampler) -> None:
        self.inner = inner
        self.cache: dict[tuple[str, tuple[float | int, ...], int], SampleResult] = {}
        self.real_calls = 0
        self.real_seconds = 0.0

    async def __call__(self, case: SuiteCase, params: HyperParams, seed: int) -> SampleResult:
        key = (case.id, params.key(), seed)
        if key not in self.cache:
            start = time.perf_counter()
            self.cache[key] = await self.inner(case, params, seed)
            self.real_seconds += time.perf_counter() - start
            self.real_calls += 1
        return self.cache[key]


def pick_cases(suites: list[str], n: int, seed: int) -> list[SuiteCase]:
    per_suite = {name: make_suite(name, n, seed) for name in suites}
    return [per_suite[suites[i % len(suites)]][i // len(suites)] for i in range(n)]


async def main_async(args: argparse.Namespace) -> None:
    options = {
        k: v
        for k, v in {
            "base_url": args.base_url,
            "model": args.model,
            "model_path": args.model_path,
        }.items()
        if v is not None
    }
    backend = args.backend or ("vllm" if args.base_url else "embedded")
    real = backend_sampler(backend, options)
    load = getattr(real.backend, "load", None)
    if callable(load):
        print(f"model load: {load():.2f} s")
    sampler = MemoSampler(real)
    limiter = asyncio.Semaphore(1)  # one call at a time: timings are per call, not queueing
    settings = SearchSettings(
        samples=args.samples,
        coarse_samples=1,
        keep=args.keep,
        budget=args.budget,
        seed=args.seed,
        max_tokens=args.max_tokens,
        space=SPACE,
    )
    cases = pick_cases(args.suites.split(","), args.cases, args.seed)
    grid_size = SPACE.grid_size("ladders")
    print(
        f"backend {backend}; {len(cases)} cases; K={settings.samples}; budget {settings.budget} "
        f"evaluations; max_tokens {settings.max_tokens}; grid {grid_size} configurations"
    )
    header = (
        f"{'case':<22} {'task':<10} {'default':>7} {'prior':>6} {'search':>6} {'grid':>6} "
        f"{'of opt':>6} {'gap':>6} {'evals':>11} {'calls':>5} {'wall s':>7}"
    )
    print(header)
    comparisons = []
    calls: list[int] = []
    walls: list[float] = []
    for case in cases:
        before_calls = sampler.real_calls
        start = time.perf_counter()
        record = await evaluate_case(case, TwoStageSearch(settings), sampler, limiter=limiter)
        wall = time.perf_counter() - start
        search_calls = sampler.real_calls - before_calls
        grid = await exhaustive_case(case, sampler, settings, limiter=limiter)
        result = compare(record, grid)
        comparisons.append(result)
        calls.append(search_calls)
        walls.append(wall)
        print(
            f"{case.id:<22} {case.task.value:<10} {record.default_score:>7.3f} "
            f"{record.prior_score:>6.3f} {record.score:>6.3f} {grid.score:>6.3f} "
            f"{result.fraction_of_optimum:>6.2f} {result.gap_closed:>6.2f} "
            f"{record.evaluations:>5.1f}/{grid.evaluations:<5} {search_calls:>5} {wall:>7.1f}"
        )
    latency = sampler.real_seconds / max(sampler.real_calls, 1)
    grid_calls = grid_size * settings.samples
    print()
    print(
        f"fraction of the exhaustive optimum reached: mean "
        f"{statistics.fmean(c.fraction_of_optimum for c in comparisons):.3f}, min "
        f"{min(c.fraction_of_optimum for c in comparisons):.3f}"
    )
    print(
        "share of the default-to-optimum gap closed: mean "
        f"{statistics.fmean(c.gap_closed for c in comparisons):.3f}"
    )
    print(
        "fraction of the grid's evaluations spent: mean "
        f"{statistics.fmean(c.fraction_of_evaluations for c in comparisons):.3f}"
    )
    print(
        f"search cost per case: {statistics.fmean(calls):.1f} model calls, "
        f"{statistics.fmean(walls):.1f} s wall (mean call {latency:.3f} s)"
    )
    print(
        f"exhaustive cost per case: {grid_calls} model calls, ~{grid_calls * latency:.0f} s at "
        "that mean call time"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=3)
    parser.add_argument("--suites", default="arithmetic,coinflip,keywords")
    parser.add_argument("--samples", type=int, default=2, help="K")
    parser.add_argument("--budget", type=int, default=20, help="evaluations per case")
    parser.add_argument("--keep", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend")
    parser.add_argument("--base-url")
    parser.add_argument("--model")
    parser.add_argument("--model-path")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
