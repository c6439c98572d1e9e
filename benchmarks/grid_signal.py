"""Does the best configuration differ within a task kind, and does choosing it pay on fresh seeds?

Reads a sampled grid (`hag-agent dataset grid-plan`, then `grid-sample`) and its suites. For
every case, each configuration's samples are split in two halves: the case's best configuration
is chosen on the first half (ties to the task prior, then to the earlier configuration) and
scored on the second, next to the task prior's score on that second half. Prints, per task kind
and per suite:

- how many cases, and how many distinct best configurations they have;
- the mean score of the task prior and of the per-case best ("oracle"), both on the fresh half;
- the oracle's margin over the prior, with a 95% bootstrap interval over cases;
- the refitted prior: the best single configuration of each task kind (chosen on the first
  halves of all the kind's cases, whatever the group, scored on the fresh ones), what a
  per-task prior refitted on this data reaches without any per-query choice; and the oracle's
  margin over it, with its interval. Only that margin is room for a per-query choice.

A kind whose cases all want one configuration has one distinct best and no margin over the
refitted prior: a per-task prior is then all a proposer can learn. Configurations some case
lacks samples of are left out for that case.

    python benchmarks/grid_signal.py SUITES --plan plan.json --samples-dir samples [--limit N]
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from hag_agent.cli.suite_job import load_suites
from hag_agent.data.suites import SuiteCase
from hag_agent.evaluation.comparison import paired_interval
from hag_agent.metrics import score_outputs
from hag_agent.search.grid_plan import GridPlan
from hag_agent.search.grid_samples import read_samples


@dataclass
class CaseChoice:
    """One case: the configuration chosen on the first half, and the fresh-half scores."""

    suite: str
    task: str
    best: int
    """The configuration best on the first half."""
    prior_config: int
    """The task prior's configuration."""
    chosen: dict[int, float]
    """Each configuration's score on the first half of the samples."""
    fresh: dict[int, float]
    """Each configuration's score on the second half."""

    @property
    def oracle(self) -> float:
        """The chosen configuration's score on the fresh half."""
        return self.fresh[self.best]

    @property
    def prior(self) -> float:
        """The task prior's score on the fresh half."""
        return self.fresh[self.prior_config]


def choose(case: SuiteCase, plan: GridPlan, texts: dict[int, list[str]]) -> CaseChoice | None:
    """The case's best configuration on its first samples, scored on the rest."""
    half = plan.samples // 2
    prior = plan.labels.index(f"prior:{case.task.value}")
    if prior not in texts or half < 1:
        return None
    chosen = {i: score_outputs(case, t[:half]) for i, t in texts.items()}
    best = max(chosen, key=lambda i: (chosen[i], i == prior, -i))
    return CaseChoice(
        suite=case.id.split("-", 1)[0],
        task=case.task.value,
        best=best,
        prior_config=prior,
        chosen=chosen,
        fresh={i: score_outputs(case, t[half:]) for i, t in texts.items()},
    )


def best_fixed(choices: list[CaseChoice]) -> tuple[int, float]:
    """The one configuration best on the group's first halves, and its mean on the fresh ones.

    What a per-task prior refitted on this data would give the group: one configuration for
    all of its cases, no per-query choice.
    """
    shared = set.intersection(*(set(c.chosen) for c in choices))
    best = max(sorted(shared), key=lambda i: statistics.fmean(c.chosen[i] for c in choices))
    return best, statistics.fmean(c.fresh[best] for c in choices)


def refitted_priors(choices: list[CaseChoice]) -> dict[str, int]:
    """The best single configuration of each task kind, chosen over all the kind's cases."""
    by_task: dict[str, list[CaseChoice]] = defaultdict(list)
    for choice in choices:
        by_task[choice.task].append(choice)
    return {task: best_fixed(members)[0] for task, members in sorted(by_task.items())}


def margin(choices: list[CaseChoice], baseline: dict[str, float]) -> str:
    """The oracle's mean margin over ``baseline`` (by case id) with its 95% bootstrap interval."""
    margins = {f"c{i}": [c.oracle - baseline[f"c{i}"]] for i, c in enumerate(choices)}
    low, high = paired_interval(margins) if len(choices) >= 2 else (float("nan"),) * 2
    mean = statistics.fmean(m for (m,) in margins.values())
    return f"{mean:+.3f} [{low:+.3f}, {high:+.3f}]"


def report(group: str, choices: list[CaseChoice], plan: GridPlan, fitted: dict[str, int]) -> str:
    """One table row: cases, distinct bests, the scores on fresh seeds, the oracle's margins."""
    bests: dict[str, int] = defaultdict(int)
    for choice in choices:
        bests[plan.labels[choice.best] + f"#{choice.best}"] += 1
    common = ", ".join(f"{name} x{n}" for name, n in sorted(bests.items(), key=lambda b: -b[1])[:3])
    prior = {f"c{i}": c.prior for i, c in enumerate(choices)}
    refit = {f"c{i}": c.fresh[fitted[c.task]] for i, c in enumerate(choices)}
    configs = sorted({fitted[c.task] for c in choices})
    labels = " + ".join(f"{plan.labels[i]}#{i}" for i in configs)
    oracle = statistics.fmean(c.oracle for c in choices)
    return (
        f"| {group} | {len(choices)} | {len(bests)} | {statistics.fmean(prior.values()):.3f} "
        f"| {statistics.fmean(refit.values()):.3f} ({labels}) | {oracle:.3f} "
        f"| {margin(choices, prior)} | {margin(choices, refit)} | {common} |"
    )


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suites")
    parser.add_argument("--plan", type=Path, required=True)
    parser.add_argument("--samples-dir", type=Path, required=True)
    parser.add_argument("--limit", type=int)
    args = parser.parse_args()
    plan = GridPlan.model_validate_json(args.plan.read_text(encoding="utf-8"))
    samples = read_samples(args.samples_dir)
    cases = load_suites(args.suites, limit=args.limit, on_bad_line="fail", warn=print)
    choices = []
    for case in cases:
        texts = {i: by_case[case.id] for i, by_case in samples.items() if case.id in by_case}
        choice = choose(case, plan, texts)
        if choice is not None:
            choices.append(choice)
    sampled = f"{len(samples)} of {len(plan.configs)} configurations sampled"
    print(f"{len(choices)} cases, {sampled}, K = {plan.samples}")
    columns = (
        "group", "cases", "distinct bests", "prior (fresh)", "refitted prior (fresh)",
        "oracle (fresh)", "oracle - prior [95%]", "oracle - refitted prior [95%]",
        "commonest bests",
    )  # fmt: skip
    print(f"| {' | '.join(columns)} |")
    print("|" + "---|" * len(columns))
    fitted = refitted_priors(choices)
    for key in ("task", "suite"):
        groups: dict[str, list[CaseChoice]] = defaultdict(list)
        for choice in choices:
            groups[getattr(choice, key)].append(choice)
        for name, members in sorted(groups.items()):
            print(report(f"{key} {name}", members, plan, fitted))
    print(report("overall", choices, plan, fitted))


if __name__ == "__main__":
    main()
