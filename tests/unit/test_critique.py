from hag_agent.critique import (
    Direction,
    JudgeVerdict,
    combine,
    echo_similarity,
    measure_signals,
)
from hag_agent.ngrams import distinct_ratio
from hag_agent.tasks import TaskKind


def signals(
    output: str,
    *,
    task: TaskKind = TaskKind.CHAT,
    finish: str = "stop",
    prompt: str = "Tell me about cats.",
    logprob: float | None = None,
):  # type: ignore[no-untyped-def]
    return measure_signals(
        output=output, prompt=prompt, task=task, finish_reason=finish, mean_logprob=logprob
    )


def test_good_output_scores_one() -> None:
    score, issues, direction, figures = signals("Cats are small carnivorous mammals kept as pets.")
    assert score == 1.0 and issues == [] and direction is Direction.NONE
    assert figures["distinct_2"] == 1.0


def test_empty_output() -> None:
    score, issues, direction, _ = signals("   ")
    assert score == 0.0 and issues == ["empty output"] and direction is Direction.MORE_VARIED


def test_cut_off_at_max_tokens() -> None:
    score, issues, direction, _ = signals("Cats are small carnivorous", finish="length")
    assert score < 0.7 and direction is Direction.LONGER
    assert "cut off at max_tokens" in issues


def test_repetition_by_distinct_n() -> None:
    text = "the cat sat on the mat " * 6
    assert (distinct_ratio([text], 2) or 1.0) < 0.5
    score, issues, direction, _ = signals(text)
    assert score <= 0.5 and direction is Direction.LESS_REPETITION
    assert issues[0].startswith("repetitive")


def test_short_text_is_not_judged_repetitive() -> None:
    assert signals("yes yes yes")[2] is Direction.NONE


def test_math_without_a_number() -> None:
    _score, issues, direction, _ = signals("It is quite large.", task=TaskKind.MATH)
    assert "no final number" in issues and direction is Direction.MORE_DETERMINISTIC
    assert signals("The answer is 391.", task=TaskKind.MATH)[0] == 1.0


def test_uncertain_math_by_logprob() -> None:
    score, _issues, direction, figures = signals("391", task=TaskKind.MATH, logprob=-3.0)
    assert direction is Direction.MORE_DETERMINISTIC and figures["mean_logprob"] == -3.0
    assert score < 1.0
    assert signals("391", task=TaskKind.MATH, logprob=-0.1)[0] == 1.0


def test_echo_of_the_prompt() -> None:
    prompt = "Explain why the sky is blue in simple words."
    assert echo_similarity(prompt.upper(), prompt) == 1.0
    _score, issues, direction, _ = signals(prompt, prompt=prompt)
    assert direction is Direction.MORE_VARIED and any("echoes" in i for i in issues)


def test_garbled_output() -> None:
    score, _issues, direction, _ = signals("☃☃☃ ☂☂ ☄☄☄☄ ♞♞")
    assert direction is Direction.MORE_FOCUSED and score <= 0.5


def test_judge_can_only_lower_the_score() -> None:
    low = JudgeVerdict(score=1, issues=["off topic"], direction=Direction.MORE_FOCUSED)
    high = JudgeVerdict(score=10)
    good = combine(
        signal_score=1.0,
        signal_issues=[],
        signal_direction=Direction.NONE,
        figures={},
        judge=low,
        judge_note=None,
        threshold=0.7,
    )
    assert good.score == 0.0 and good.verdict == "retry"
    assert good.direction is Direction.MORE_FOCUSED and good.source == "signals+judge"
    bad = combine(
        signal_score=0.2,
        signal_issues=["empty output"],
        signal_direction=Direction.MORE_VARIED,
        figures={},
        judge=high,
        judge_note=None,
        threshold=0.7,
    )
    assert bad.score == 0.2 and bad.direction is Direction.MORE_VARIED


def test_judge_fallback_is_recorded() -> None:
    critique = combine(
        signal_score=0.9,
        signal_issues=[],
        signal_direction=Direction.NONE,
        figures={},
        judge=None,
        judge_note="not JSON",
        threshold=0.7,
    )
    assert critique.verdict == "accept" and "judge fallback: not JSON" in critique.source
