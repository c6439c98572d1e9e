"""The suites where decoding decides: their metrics, and every answer checked from its prompt."""

from __future__ import annotations

import re

import pytest

from hag_agent.data import decoding_generators as dg
from hag_agent.data.suites import make_suite
from hag_agent.errors import HAGInputError
from hag_agent.metrics import (
    distinct_items,
    list_items,
    loop_free_length,
    metric_value,
    score_outputs,
)

INSECTS = ["ant", "bee|honeybee", "fly|housefly", "beetle", "moth", "ladybug|ladybird"]


def test_list_items_strip_numbers_bullets_and_descriptions() -> None:
    text = "Here they are:\n1. Ant\n2) Bee - it makes honey\n- Moth (at night)\n* beetle: hard\n"
    assert list_items(text) == ["Here they are", "Ant", "Bee", "Moth", "beetle"]
    assert list_items("ant, bee, moth.") == ["ant", "bee", "moth."]
    assert list_items("") == []


@pytest.mark.parametrize(
    ("output", "score"),
    [
        ("Ant\nBee\nMoth\nBeetle", 1.0),
        ("1. Ants\n2. Bees\n3. Moths\n4. Beetles", 1.0),  # plurals
        ("ant, a bee, the moth, beetle", 1.0),  # one line, commas, articles
        ("Ant\nBee\nMoth\nMoth", 0.75),  # a repeat
        ("Bee\nHoneybee\nMoth\nAnt", 0.75),  # two spellings of one item
        ("Ant\nBee\nMoth\nDog", 0.75),  # not an insect
        ("Sure! Here are four:\nAnt\nBee\nMoth\nBeetle", 0.8),  # a preamble line
        ("Ant\nBee\nMoth\nBeetle\nFly\nLadybird", 4 / 6),  # more than asked
        ("Ant\nBee", 0.5),  # fewer than asked
        ("", 0.0),
        ("Insects are small animals with six legs.", 0.0),
    ],
)
def test_distinct_items(output: str, score: float) -> None:
    assert distinct_items(output, INSECTS, 4) == pytest.approx(score)


def test_loop_free_length_rewards_length_and_punishes_loops() -> None:
    varied = " ".join(f"word{i}" for i in range(50))  # 50 distinct words: no repeated 3-gram
    assert loop_free_length(varied, 40) == pytest.approx(1.0)
    assert loop_free_length(varied, 100) == pytest.approx(0.5)  # half the length asked
    assert loop_free_length(varied, 20) == pytest.approx(0.8)  # 2.5 times the length
    looped = " ".join(["the cat sat on the mat"] * 10)  # 60 words, 6 distinct 3-grams
    assert loop_free_length(looped, 60) < 0.15
    assert loop_free_length("", 40) == 0.0


def test_list_category_file_is_well_formed() -> None:
    categories = dg.load_list_categories()
    assert len(categories) >= 12
    for name, category in categories.items():
        spellings = [s for item in category.items for s in item.split("|")]
        assert len(spellings) == len(set(spellings)), f"{name}: a spelling in two items"
        assert all(s == s.lower().strip() and s for s in spellings), name
        assert len(category.items) >= 25, name


def test_distinct_list_cases_ask_for_their_count_of_their_category() -> None:
    categories = {c.plural: c for c in dg.load_list_categories().values()}
    for case in make_suite("distinct_list", 180, seed=2):
        found = re.search(r"(?:List|Name) (\d) different (.+?)[,.]", case.prompt)
        assert found, case.prompt
        assert case.count == int(found.group(1))
        assert case.answers == list(categories[found.group(2)].items)
        right = "\n".join(item.split("|")[0] for item in categories[found.group(2)].items[:8])
        assert metric_value(case, right) == pytest.approx(case.count / 8)


def test_repeat_answers_are_the_sentence_in_the_prompt() -> None:
    cases = make_suite("repeat_exact", 200, seed=4)
    assert {c.prompt.split(" ", 1)[0] for c in cases} == {"Repeat", "Write", "Say"}
    for case in cases:
        sentence = case.prompt.split(", and write nothing else: ")[-1]
        sentence = sentence.split(", and nothing else: ")[-1]
        assert case.answer == sentence and sentence.endswith("."), case.prompt
        assert metric_value(case, f"Here it is: {case.answer}") == 1.0
        assert metric_value(case, sentence.lower()) == 0.0  # case counts
        assert metric_value(case, sentence[:-1]) == 0.0  # so does the full stop


def test_continuation_cases_ask_for_their_length() -> None:
    for case in make_suite("continuation", 100, seed=6):
        found = re.search(r"in about (\d+) words: ", case.prompt)
        assert found and case.count == int(found.group(1))
        assert case.count in dg.CONTINUATION_LENGTHS


def test_talk_cases_are_chat_requests_that_ask_for_their_length() -> None:
    from hag_agent.classification import classify_by_rules
    from hag_agent.tasks import TaskKind

    cases = make_suite("talk_at_length", 180, seed=0)  # every prompt the generator can make
    assert len({c.prompt for c in cases}) == 180
    for case in cases:
        found = re.search(r"(?:in )?about (\d+) words", case.prompt)
        assert found and case.count == int(found.group(1)), case.prompt
        assert any(topic in case.prompt for topic in dg.TALK_TOPICS), case.prompt
        # The kind the graph's rules give the prompt is the case's: the chat prior serves both
        # talk_at_length and repeat_exact, which want opposite settings.
        assert case.task is TaskKind.CHAT
        assert classify_by_rules(case.prompt)[0] is TaskKind.CHAT, case.prompt
    with pytest.raises(HAGInputError, match="at most 180 cases"):
        make_suite("talk_at_length", 181, seed=0)


def test_identical_right_samples_of_an_exact_case_score_1() -> None:
    # Varied samples are rewarded only for open-ended writing, not for an exact copy or a list.
    case = make_suite("repeat_exact", 1, seed=0)[0]
    assert score_outputs(case, [case.answer or ""] * 4) == 1.0
    listing = make_suite("distinct_list", 1, seed=0)[0]
    right = "\n".join(item.split("|")[0] for item in (listing.answers or [])[: listing.count])
    assert score_outputs(listing, [right] * 4) == 1.0
    story = make_suite("continuation", 1, seed=0)[0]
    text = " ".join(f"word{i}" for i in range(story.count or 0))
    assert score_outputs(story, [text] * 4) < 0.85  # four copies of one story: no diversity
