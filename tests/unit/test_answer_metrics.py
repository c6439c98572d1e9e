"""The verbatim and one_of metrics (the held-out suites' copies and one-word answers)."""

from __future__ import annotations

import pytest

from hag_agent.data.cases import SuiteCase
from hag_agent.metrics import ONE_OF_MENTION_CREDIT, metric_value, one_of_match, verbatim_match
from hag_agent.tasks import TaskKind


@pytest.mark.parametrize(
    ("output", "answer", "expected"),
    [
        ("THE RED FOX.", "THE RED FOX.", 1.0),
        ("  THE RED   FOX. \n", "THE RED FOX.", 1.0),
        ('"THE RED FOX."', "THE RED FOX.", 1.0),
        ("\u201cTHE RED FOX.\u201d", "THE RED FOX.", 1.0),
        ("Sure! Here it is: THE RED FOX.", "THE RED FOX.", 1.0),
        ("Sure, here you go:\nTHE RED FOX.", "THE RED FOX.", 1.0),
        ("Answer: Owls hunt at night.", "Owls hunt at night.", 1.0),
        ("the red fox.", "THE RED FOX.", 0.0),  # case counts
        ("THE RED FOX", "THE RED FOX.", 0.0),  # so does punctuation
        ("The Red Fox.", "THE RED FOX.", 0.0),
        ("THE RED FOX. THE RED FOX.", "THE RED FOX.", 0.0),
        ("THE RED FOX.\nI hope this helps!", "THE RED FOX.", 0.0),
        ("", "THE RED FOX.", 0.0),
        ("castle cookie forest park", "castle cookie forest park", 1.0),
        ("park forest cookie castle", "castle cookie forest park", 0.0),
    ],
)
def test_verbatim_match(output: str, answer: str, expected: float) -> None:
    assert verbatim_match(output, answer) == expected


FRUIT = ("apple", "banana", "passion fruit", "berry")
HALF = ONE_OF_MENTION_CREDIT


@pytest.mark.parametrize(
    ("output", "answers", "expected"),
    [
        ("Banana", FRUIT, 1.0),
        ("banana.", FRUIT, 1.0),
        ("A banana!", FRUIT, 1.0),  # an article is not a second word
        ("Bananas", FRUIT, 1.0),  # a regular plural
        ("berries", FRUIT, 1.0),
        ("Passion fruit", FRUIT, 1.0),
        ("an apple", FRUIT, 1.0),
        ("Sure! My answer: apple", FRUIT, 1.0),
        ("Sure, here you go:\nApple", FRUIT, 1.0),
        ("I would suggest a banana.", FRUIT, HALF),  # right, but not in one word
        ("I would suggest a banana", FRUIT, HALF),
        ("Banana and apple", FRUIT, HALF),
        ("A passion fruit smoothie! It is sweet.", FRUIT, HALF),
        ("I like toast. Bananas are good too.", FRUIT, 0.0),  # only the first sentence counts
        ("I like toast.\nBananas are good too", FRUIT, 0.0),
        ("Toast", FRUIT, 0.0),
        ("bandana", FRUIT, 0.0),  # whole words only
        ("A pineapple.", FRUIT, 0.0),
        ("", FRUIT, 0.0),
        ("8", ("8", "eight"), 1.0),
        ("Eight.", ("8", "eight"), 1.0),
        ("A spider has 8 legs.", ("8", "eight"), HALF),
        ("9", ("8", "eight"), 0.0),
        ("It has 9 legs. Some say 8.", ("8", "eight"), 0.0),
        ("Twenty-four", ("24", "twenty-four", "twenty four"), 1.0),
        ("twenty four", ("24", "twenty-four", "twenty four"), 1.0),
        ("There are twenty-four hours.", ("24", "twenty-four", "twenty four"), HALF),
        ("The Pacific Ocean.", ("Pacific", "Pacific Ocean"), 1.0),
        ("Paris", ("Paris",), 1.0),
        ("The capital of France is Paris.", ("Paris",), HALF),
        ("The capital of France is Lyon. Paris is larger.", ("Paris",), 0.0),
        ("Paris", ("!!!", "Paris"), 1.0),  # an answer with no words matches nothing
        ("!!!", ("!!!",), 0.0),
    ],
)
def test_one_of_match(output: str, answers: tuple[str, ...], expected: float) -> None:
    assert one_of_match(output, answers) == expected


def test_metric_value_reads_the_case_fields() -> None:
    one_of = SuiteCase(id="a", task=TaskKind.CHAT, prompt="p", answers=["tea", "coffee"])
    assert one_of.metric_name == "one_of"
    assert metric_value(one_of, "Coffee.") == 1.0
    assert metric_value(one_of, "Juice.") == 0.0
    assert metric_value(one_of, "I'd have a coffee.") == ONE_OF_MENTION_CREDIT
    verbatim = SuiteCase(
        id="b", task=TaskKind.CHAT, prompt="p", answer="Keep calm.", metric="verbatim"
    )
    assert metric_value(verbatim, "Keep calm.") == 1.0
    assert metric_value(verbatim, "keep calm.") == 0.0
    exact = SuiteCase(id="c", task=TaskKind.CHAT, prompt="p", answer="Keep calm.")
    assert metric_value(exact, "keep calm") == 1.0  # what verbatim adds over exact
