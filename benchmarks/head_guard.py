"""How well the learned head's embedding guard tells its training suites from unlike requests.

Embeds (the embedded default model, as ``train head`` does) every prompt of a search file, new
cases of the same suites (other seeds, not in the file) and unlike requests (chat, factual,
one-word, copy-exactly, code), splits the file as ``train head`` does, and for each way of
measuring nearness prints how many in-suite prompts a threshold keeps and how many unlike
requests it refuses, the threshold calibrated on the training prompts alone (a quantile of their
leave-one-out nearest similarities), and the AUC of in-suite against unlike.

Designs: nearest training prompt by cosine of the raw, centered or standardized embeddings (the
head uses standardized), and the nearest per-task centroid.

    python benchmarks/head_guard.py [--data docs/results/grid/search.jsonl] [--cache FILE]

Embedding about 280 prompts takes a few minutes on a quiet 2-core machine; ``--cache`` keeps
the vectors in an ``.npz`` file and reuses them while the prompts are the same.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from hag_agent.backends.embedded import EmbeddedBackend, EmbeddedOptions
from hag_agent.data.search_records import read_records
from hag_agent.data.suites import builtin_suites, make_suite
from hag_agent.training.head_training import OUTSIDE_PROBES
from hag_agent.training.sft_data import split_records

Matrix = NDArray[np.float64]

UNLIKE = (
    *OUTSIDE_PROBES,
    "What year did the Berlin Wall fall?",
    "Name a fruit. One word only.",
    'Say "ready" and nothing else.',
    "Write a SQL query that counts the orders per customer.",
    "Can you recommend a good book for a long flight?",
    "What is the boiling point of water at sea level in Celsius?",
    "I feel tired all the time, any tips?",
    "Give me three ideas for a birthday party.",
    "What is photosynthesis?",
    "Thanks, that was helpful!",
    "List the planets of the solar system.",
    "Echo back: 7 red apples",
)
"""Requests unlike every training suite: `OUTSIDE_PROBES` and a dozen more."""
QUANTILES = (0.0, 0.01, 0.05, 0.1)


def fresh_prompts(known: set[str], seeds: tuple[int, ...], per_suite: int) -> list[str]:
    """New cases of the built-in suites (other seeds), none of them in ``known``."""
    fresh: list[str] = []
    for name in builtin_suites():
        for seed in seeds:
            for case in make_suite(name, n=per_suite, seed=seed):
                if case.prompt not in known and case.prompt not in fresh:
                    fresh.append(case.prompt)
    return fresh


def embeddings(prompts: list[str], cache: Path | None) -> Matrix:
    """Each prompt's embedding by the embedded default model (from ``cache`` when it matches)."""
    if cache is not None and cache.is_file():
        stored = np.load(cache, allow_pickle=False)
        if list(stored["prompts"]) == prompts:
            return np.asarray(stored["vectors"], dtype=np.float64)
    backend = EmbeddedBackend(EmbeddedOptions())
    vectors = np.array([backend.embed(prompt).vector for prompt in prompts], dtype=np.float64)
    if cache is not None:
        np.savez(cache, prompts=np.array(prompts), vectors=vectors)
    return vectors


def unit(rows: Matrix) -> Matrix:
    norms = np.linalg.norm(rows, axis=-1, keepdims=True)
    return rows / np.where(norms > 0, norms, 1.0)


def auc(inside: Matrix, outside: Matrix) -> float:
    """The chance that an in-suite prompt is nearer than an unlike one (ties count half)."""
    above = (inside[:, None] > outside[None]).mean()
    ties = (inside[:, None] == outside[None]).mean()
    return float(above + 0.5 * ties)


def report(name: str, calibration: Matrix, held: Matrix, fresh: Matrix, unlike: Matrix) -> None:
    """One design's AUC and, per quantile, what its threshold keeps and refuses."""
    print(
        f"\n{name}: AUC in-suite vs unlike {auc(np.r_[held, fresh], unlike):.3f}; "
        f"held-out min {held.min():.3f}, new cases min {fresh.min():.3f}, "
        f"unlike max {unlike.max():.3f}"
    )
    for q in QUANTILES:
        t = float(np.quantile(calibration, q))
        print(
            f"  quantile {q:.2f}, threshold {t:.3f}: held-out kept {(held >= t).sum()}/"
            f"{len(held)}, new cases kept {(fresh >= t).sum()}/{len(fresh)}, "
            f"unlike refused {(unlike < t).sum()}/{len(unlike)}"
        )


def nearest_designs(train: Matrix) -> dict[str, Callable[[Matrix], Matrix]]:
    """Each way to place embeddings before the cosine with the training prompts."""
    mean, spread = train.mean(axis=0), train.std(axis=0)
    scale = np.where(spread > 1e-12, spread, 1.0)
    return {
        "raw": unit,
        "centered": lambda rows: unit(rows - mean),
        "standardized (the head's)": lambda rows: unit((rows - mean) / scale),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("docs/results/grid/search.jsonl"))
    parser.add_argument("--seed", type=int, default=0, help="the split's seed (train head's)")
    parser.add_argument("--held-out", type=float, default=0.2)
    parser.add_argument("--cache", type=Path, help="an .npz file that keeps the embeddings")
    args = parser.parse_args()
    records = read_records(args.data, strict=True)
    split = split_records(records, args.held_out, args.seed)
    ordered = [*split.train, *split.held_out]
    fresh = fresh_prompts({r.prompt for r in records}, (100, 101), 6)
    prompts = [r.prompt for r in ordered] + fresh + list(UNLIKE)
    vectors = embeddings(prompts, args.cache)
    n_train, n_data = len(split.train), len(ordered)
    train, held = vectors[:n_train], vectors[n_train:n_data]
    new, unlike = vectors[n_data : n_data + len(fresh)], vectors[n_data + len(fresh) :]
    print(
        f"{n_train} training prompts, {len(held)} held out, {len(new)} new cases of the same "
        f"suites, {len(unlike)} unlike requests"
    )
    for name, place in nearest_designs(train).items():
        placed = place(train)
        loo = placed @ placed.T
        np.fill_diagonal(loo, -np.inf)
        near = [(place(rows) @ placed.T).max(axis=1) for rows in (held, new, unlike)]
        report(f"nearest, {name}", loo.max(axis=1), *near)
    place = nearest_designs(train)["centered"]
    placed = place(train)
    tasks = [r.task for r in split.train]
    kinds = sorted(set(tasks))
    centroids = unit(np.stack([placed[[t == k for t in tasks]].mean(axis=0) for k in kinds]))
    own = np.array([placed[i] @ centroids[kinds.index(k)] for i, k in enumerate(tasks)])
    near = [(place(rows) @ centroids.T).max(axis=1) for rows in (held, new, unlike)]
    report("per-task centroids", own, *near)


if __name__ == "__main__":
    main()
