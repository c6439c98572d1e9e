import pytest

from hag_agent.classification import classify_by_rules
from hag_agent.tasks import TaskKind


@pytest.mark.parametrize(
    ("prompt", "kind"),
    [
        ("What is 17 * 23?", TaskKind.MATH),
        ("A shop sells 3 apples for 2 dollars. How much do 12 apples cost?", TaskKind.MATH),
        ("Translate 'good morning' into French.", TaskKind.TRANSLATION),
        ("Write a Python function that reverses a list.", TaskKind.CODE),
        ("Write a short poem about the sea.", TaskKind.CREATIVE),
        (
            "A coin is heads up. Alice flips it. Bob does not. Is it still heads up?",
            TaskKind.REASONING,
        ),
        ("What is the capital of Australia?", TaskKind.FACTUAL),
        ("hey, how are you doing today?", TaskKind.CHAT),
    ],
)
def test_rules(prompt: str, kind: TaskKind) -> None:
    task, reason = classify_by_rules(prompt)
    assert task is kind, reason
    assert reason


def test_every_builtin_suite_case_is_classified_as_its_task() -> None:
    from hag_agent.data.suites import builtin_suites, make_suite

    for name in builtin_suites():
        wrong = [
            (case.id, kind.value)
            for case in make_suite(name)
            if (kind := classify_by_rules(case.prompt)[0]) is not case.task
        ]
        assert not wrong, f"{name}: {wrong[:3]}"


def test_plain_sentences_stay_chat() -> None:
    for prompt in ("Hello there!", "Tell me about your day.", "Thanks, that helps a lot."):
        assert classify_by_rules(prompt)[0] is TaskKind.CHAT, prompt
