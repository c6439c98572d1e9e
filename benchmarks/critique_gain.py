"""The retry loop's own contribution: each proposer with critique on against itself with it off.

Reads two evaluation folders made by the same ``hag-agent eval`` command but for
``--critique`` / ``--no-critique`` (same suites, cases, seeds and proposers) and compares, per
proposer, the run with critique against the run without on the same case and seed: the
difference, its 95% two-stage paired bootstrap interval (cases, then seeds) and wins / ties /
losses per case, exactly as the eval report compares proposers. It also gives the attempts per
run and the time per run with critique, which is what the retries cost.

    python benchmarks/critique_gain.py OFF_DIR ON_DIR
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from hag_agent.evaluation.comparison import OVERALL, compare, format_difference, format_record
from hag_agent.evaluation.rows import EvalRow, read_rows

ON = " +critique"
"""Appended to a proposer's name for its rows with critique on."""


def labelled(off: list[EvalRow], on: list[EvalRow]) -> list[EvalRow]:
    """Both runs' rows in one list, the critique rows under their own proposer name."""
    return off + [row.model_copy(update={"proposer": row.proposer + ON}) for row in on]


def main() -> None:
    """Print one line per proposer and task."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("off", type=Path, help="The --no-critique run's folder.")
    parser.add_argument("on", type=Path, help="The --critique run's folder.")
    args = parser.parse_args()
    off, on = read_rows(args.off / "rows.jsonl"), read_rows(args.on / "rows.jsonl")
    if not off or not on:
        raise SystemExit("no rows: give two folders written by hag-agent eval")
    if any(row.critique for row in off) or not all(row.critique for row in on):
        raise SystemExit("OFF_DIR must hold --no-critique rows and ON_DIR --critique rows")
    rows = labelled(off, on)
    proposers = list(dict.fromkeys(row.proposer for row in off))  # in the run's order
    tasks = [OVERALL, *sorted({row.task for row in off})]
    print("| task | proposer | critique on - off [95% interval] | verdict | wins / ties / losses "
          "| attempts per run (on) | time per run, off -> on (s) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for task in tasks:
        for proposer in proposers:
            item = compare(rows, proposer + ON, proposer, task)
            mine = [r for r in on if r.proposer == proposer and task in (OVERALL, r.task)]
            before = [r for r in off if r.proposer == proposer and task in (OVERALL, r.task)]
            attempts = statistics.mean(r.attempts for r in mine)
            seconds = f"{statistics.mean(r.time_s for r in before):.2f} -> "
            seconds += f"{statistics.mean(r.time_s for r in mine):.2f}"
            print(
                f"| {task} | {proposer} | {format_difference(item)} | {item.verdict} | "
                f"{format_record(item)} | {attempts:.2f} | {seconds} |"
            )


if __name__ == "__main__":
    main()
