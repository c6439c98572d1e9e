"""The packaged tuned proposer on the embedded model, within what its training data held.

Its search held max_tokens at 48, so it proposes 48 for every request: a long answer would stop
mid-docstring. Its card says so, and the run leaves max_tokens (and task kinds it never saw) to
the task prior.
"""

from __future__ import annotations

import json
from typing import Any

from hag_agent.tasks import TASK_PRIORS, TaskKind

from .test_cli_run import hag

FIBONACCI = (
    "Write a Python function that returns the n-th Fibonacci number, with a docstring and a test."
)


def run_json(prompt: str) -> dict[str, Any]:
    done = hag(
        "run",
        prompt,
        "--proposer-model",
        "builtin",
        "--no-critique",
        "--max-retries",
        "0",
        "--seed",
        "1",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def propose_event(result: dict[str, Any]) -> dict[str, Any]:
    event: dict[str, Any] = next(e for e in result["trace"] if e["node"] == "propose")
    return event


def test_a_long_code_answer_is_not_cut_by_the_tuned_proposer() -> None:
    result = run_json(FIBONACCI)
    assert result["task"] == "code"
    assert result["params"]["max_tokens"] == TASK_PRIORS[TaskKind.CODE].max_tokens == 768
    event = propose_event(result)
    assert event["data"]["outside_training"] is True
    assert "never saw a code task in training" in event["message"]


def test_a_task_it_was_trained_on_takes_its_held_budget_from_the_prior() -> None:
    result = run_json("What is 17 * 3?")
    assert result["task"] == "math"
    attempt = result["attempts"][0]
    assert attempt["params"]["max_tokens"] == TASK_PRIORS[TaskKind.MATH].max_tokens  # not 48
    assert attempt["sources"]["max_tokens"] == "prior"
    assert (attempt["params"]["min_p"], attempt["sources"]["min_p"]) == (0.0, "fixed")
    assert "model" in attempt["sources"].values()  # the rest is the tuned proposer's
    event = propose_event(result)
    budget = "max_tokens from the math prior (a budget its training data held fixed)"
    assert budget in event["message"]
    assert event["data"]["raw"]  # one proposal call was made
