"""Metrics on hand-checked values."""

from __future__ import annotations

import sys

import pytest

from hag_agent.data.cases import METRIC_NAMES, SuiteCase
from hag_agent.errors import ConfigurationError, HAGInputError
from hag_agent.metrics import (
    METRICS,
    chrf,
    distinct_n,
    exact_match,
    final_number,
    inflections,
    keyword_coverage,
    metric_value,
    normalize_answer,
    parse_yes_no,
    score_outputs,
    self_bleu,
)
from hag_agent.tasks import TaskKind


def test_every_metric_name_is_implemented() -> None:
    assert set(METRICS) == set(METRIC_NAMES)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The answer is 14.", 14.0),
        ("14 cows", 14.0),
        ("It costs $1,200 in total.", 1200.0),
        ("-3.5", -3.5),
        ("5 * 8 = 42", 42.0),
        ("First 3, then 7, so 10.", 10.0),
        ("The answer is 14 (7 x 2).", 14.0),
        ("**Answer:** 56", 56.0),
        ("Answer: 1,234,567.5 marbles", 1234567.5),
        ("The temperature fell to \u22125 degrees", -5.0),
        ("pages 10-12", 12.0),
        ("a value of .5", 0.5),
        ("The answer is unknown, but 9 is close", 9.0),
        ("no digits here", None),
        ("", None),
    ],
)
def test_final_number(text: str, expected: float | None) -> None:
    assert final_number(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Yes", True),
        ("no.", False),
        ("**No**, the coin is tails up.", False),
        ("Yes, it is still heads up.", True),
        ("Ann flips it, Bob does not. So the answer is: no", False),
        ("Answer: Yes", True),
        ("Ann flips the coin, so it is tails up; Bob leaves it. No.", False),
        ("Two flips cancel out, so yes.", True),
        ("The coin is tails up.", None),
        ("Nobody knows; nothing is certain.", None),
    ],
)
def test_parse_yes_no(text: str, expected: bool | None) -> None:
    assert parse_yes_no(text) is expected


def test_normalize_answer() -> None:
    assert normalize_answer('  "Appy-Hay   EENGRAY!" ') == "appyhay eengray"


@pytest.mark.parametrize(
    ("output", "answer", "expected"),
    [
        ("appyhay eengray", "appyhay eengray", 1.0),
        ("Appy-hay eengray.", "appyhay eengray", 1.0),
        ("The answer is nk.", "nk", 1.0),
        ("Last letters: n and k.\nAnswer: **nk**", "nk", 1.0),
        ("Here it is:\nPig Latin: appyhay eengray", "appyhay eengray", 1.0),
        ("appyhay eengr", "appyhay eengray", 0.0),
        ("n k", "nk", 0.0),
        ("The letters are nk and more", "nk", 0.0),
    ],
)
def test_exact_match(output: str, answer: str, expected: float) -> None:
    assert exact_match(output, answer) == expected


def test_chrf_hand_checked() -> None:
    assert chrf("Le chat dort sur le canapé.", "Le chat dort sur le canapé.") == pytest.approx(1.0)
    assert chrf("xyz qqq", "Le chat dort") == pytest.approx(0.0, abs=0.01)
    assert chrf("", "Le chat dort") == 0.0
    partial = chrf("Le chat dort.", "Le chat dort sur le canapé.")
    assert 0.2 < partial < 0.9


def test_missing_sacrebleu_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sacrebleu", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'hag-agent\[eval\]'"):
        chrf("a", "a")
    with pytest.raises(ConfigurationError, match=r"hag-agent\[eval\]"):
        self_bleu(["a", "b"])


def test_inflections() -> None:
    assert {"dog", "dogs"} <= inflections("dog")
    assert {"dance", "danced", "dancing", "dances"} <= inflections("dance")
    assert {"berries", "berried"} <= inflections("berry")
    assert {"running", "runs"} <= inflections("run")
    assert {"boxes"} <= inflections("box")
    assert {"leaves"} <= inflections("leaf")
    assert {"knives"} <= inflections("knife")
    assert "jumpping" not in inflections("jump")
    assert "cooking" in inflections("cook") and "cookking" not in inflections("cook")


@pytest.mark.parametrize(
    ("text", "keywords", "expected"),
    [
        ("The dog caught a frisbee in the park.", ["dog", "frisbee", "park"], 1.0),
        ("Two DOGS chased frisbees.", ["dog", "frisbee", "park"], 2 / 3),
        ("The dog's ball.", ["dog"], 1.0),
        ("Dogma is not a dog word.", ["cat"], 0.0),
        ("Dogma rules here.", ["dog"], 0.0),
        ("She was dancing and running.", ["dance", "run"], 1.0),
        ("We ate ice creams.", ["ice cream"], 1.0),
        ("We ate ice and cream.", ["ice cream"], 0.0),
        ("anything", [], 1.0),
    ],
)
def test_keyword_coverage(text: str, keywords: list[str], expected: float) -> None:
    assert keyword_coverage(text, keywords) == pytest.approx(expected)


def test_distinct_n_known_lists() -> None:
    assert distinct_n(["a b a b"], 1) == pytest.approx(2 / 4)
    assert distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)
    assert distinct_n(["a b", "a b"], 2) == pytest.approx(1 / 2)
    assert distinct_n(["a b", "c d"], 2) == pytest.approx(1.0)
    assert distinct_n(["The cat.", "the CAT!"], 1) == pytest.approx(2 / 4)
    assert distinct_n(["a", "b"], 2) == 0.0  # no bigram inside either text
    assert distinct_n([], 1) == 0.0
    with pytest.raises(HAGInputError):
        distinct_n(["a"], 0)


def test_self_bleu() -> None:
    same = ["the dog plays in the park with a red frisbee"] * 3
    assert self_bleu(same) == pytest.approx(1.0)
    different = [
        "the dog plays in the park with a red frisbee",
        "quantum chromodynamics explains strong nuclear forces",
        "my grandmother bakes bread every sunday morning",
    ]
    assert self_bleu(different) < 0.05
    assert self_bleu(["only one"]) == 0.0
    assert self_bleu([]) == 0.0


def _case(**fields: object) -> SuiteCase:
    return SuiteCase.model_validate({"id": "c", "prompt": "p", **fields})


def test_metric_value_per_metric() -> None:
    assert metric_value(_case(task="math", answer="14"), "So 14 cows.") == 1.0
    assert metric_value(_case(task="math", answer="14"), "So 15 cows.") == 0.0
    assert metric_value(_case(task="math", answer="1,200"), "$1200.00") == 1.0
    assert metric_value(_case(task="math", answer="14"), "no idea") == 0.0
    assert metric_value(_case(task="reasoning", answer="no"), "No.") == 1.0
    assert metric_value(_case(task="reasoning", answer="yes"), "No.") == 0.0
    assert metric_value(_case(task="reasoning", answer="yes"), "Unclear.") == 0.0
    assert metric_value(_case(task="reasoning", answer="nk"), "NK") == 1.0
    assert metric_value(_case(task="translation", reference="Hallo Welt"), "Hallo Welt") == (
        pytest.approx(1.0)
    )
    assert metric_value(_case(task="creative", keywords=["a", "dog"]), "A dog.") == 1.0


def test_score_outputs_is_the_mean_for_non_creative_cases() -> None:
    case = _case(task="math", answer="4")
    assert score_outputs(case, ["4", "5", "4", "4"]) == pytest.approx(0.75)
    with pytest.raises(HAGInputError):
        score_outputs(case, [])


def test_score_outputs_creative_diversity_term() -> None:
    case = _case(task=TaskKind.CREATIVE, keywords=["dog", "frisbee", "park"])
    text = "the dog plays in the park with a frisbee"
    # quality 1; two copies: 8 unique bigrams of 16 -> distinct-2 0.5, self-BLEU 1 -> diversity 0
    assert score_outputs(case, [text, text]) == pytest.approx(0.8)
    # one sample: diversity cannot be measured, the score is the coverage
    assert score_outputs(case, [text]) == pytest.approx(1.0)
    varied = [text, "a park dog fetched my frisbee yesterday evening"]
    assert score_outputs(case, varied) > 0.95
    half = ["dog", "frisbee park"]  # coverage 1/3 and 2/3; distinct-2 1.0; self-BLEU 0
    assert score_outputs(case, half) == pytest.approx(0.8 * 0.5 + 0.2 * 1.0)
