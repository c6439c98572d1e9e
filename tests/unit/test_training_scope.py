"""TrainingScope: which keys training data held fixed, and which task kinds it held."""

from __future__ import annotations

from hag_agent.tasks import TaskKind
from hag_agent.training_scope import TrainingScope


def test_a_key_with_one_value_everywhere_is_fixed() -> None:
    configurations = [
        {"temperature": 0.2, "top_p": 0.9, "max_tokens": 48},
        {"temperature": 0.7, "top_p": 0.9, "max_tokens": 48},
        {"temperature": 1.0, "top_p": 1.0, "max_tokens": 48},
    ]
    scope = TrainingScope.of_data(configurations, [TaskKind.MATH])
    assert scope.fixed == {"max_tokens": 48.0}
    assert "temperature" not in scope.fixed  # it varied


def test_a_single_configuration_tells_nothing() -> None:
    scope = TrainingScope.of_data([{"temperature": 0.2, "max_tokens": 48}], [TaskKind.MATH])
    assert scope.fixed == {}


def test_task_kinds_bound_what_is_covered() -> None:
    scope = TrainingScope.of_data([], [TaskKind.MATH, TaskKind.REASONING])
    assert scope.covers(TaskKind.MATH)
    assert not scope.covers(TaskKind.CHAT)
    assert TrainingScope().covers(TaskKind.CHAT)


def test_round_trips_through_json() -> None:
    scope = TrainingScope(fixed={"min_p": 0.0}, task_kinds=frozenset({TaskKind.CREATIVE}))
    assert TrainingScope.model_validate_json(scope.model_dump_json()) == scope


def test_the_same_scope_writes_the_same_text_in_any_process() -> None:
    import subprocess
    import sys

    code = (
        "from hag_agent.training_scope import TrainingScope as T; from hag_agent.tasks import "
        "TaskKind as K; print(T(task_kinds=frozenset(K)).model_dump_json())"
    )
    texts = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={"PYTHONHASHSEED": str(seed), "PATH": ""},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in range(4)
    }
    assert len(texts) == 1
