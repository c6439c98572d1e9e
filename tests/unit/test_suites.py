"""Suites: the JSONL format, the loader's errors, and every generator checked independently."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import pytest

import hag_agent.data
from hag_agent.classification import classify_by_rules
from hag_agent.cli.suite_job import load_suites
from hag_agent.data import generators
from hag_agent.data.cases import METRIC_NAMES
from hag_agent.data.suites import (
    SuiteCase,
    SuiteFormatError,
    builtin_suites,
    load_cases,
    make_suite,
    write_cases,
)
from hag_agent.errors import HAGInputError
from hag_agent.metrics import ONE_OF_MENTION_CREDIT, metric_value
from hag_agent.tasks import TaskKind

TRAINING_SUITES = ("coinflip", "last_letters", "arithmetic", "pig_latin", "translation", "keywords")
DECODING_SUITES = ("distinct_list", "repeat_exact", "talk_at_length", "continuation")
HELD_OUT_SUITES = ("short_facts", "copy_exact", "chat_reply")
SUITES = TRAINING_SUITES + DECODING_SUITES + HELD_OUT_SUITES


def test_builtin_names_and_specs() -> None:
    specs = builtin_suites()
    assert tuple(specs) == SUITES
    for name, spec in specs.items():
        assert spec.name == name
        assert spec.description
        assert spec.metric in METRIC_NAMES
        assert 1 <= spec.default_size <= 60
        assert spec.held_out == (name in HELD_OUT_SUITES)
        assert spec.max_size is None or spec.default_size <= spec.max_size


@pytest.mark.parametrize("name", SUITES)
def test_generator_is_reproducible_and_well_formed(name: str) -> None:
    spec = builtin_suites()[name]
    first = make_suite(name, 25, seed=3)
    again = make_suite(name, 25, seed=3)
    other = make_suite(name, 25, seed=4)
    assert first == again
    assert [c.prompt for c in first] != [c.prompt for c in other]
    assert len(first) == 25
    assert len({c.id for c in first}) == 25
    assert len({c.prompt for c in first}) == 25
    for case in first:
        assert case.task is spec.task
        assert case.metric_name == spec.metric
    assert len(make_suite(name)) == spec.default_size
    assert make_suite(name, 5, seed=3) == first[:5]  # a larger suite extends a smaller one


def test_larger_suites_have_distinct_prompts() -> None:
    for name in (
        *("coinflip", "last_letters", "arithmetic", "pig_latin", "keywords", "copy_exact"),
        *DECODING_SUITES,
    ):
        size = min(200, builtin_suites()[name].max_size or 200)
        cases = make_suite(name, size, seed=11)
        assert len({c.prompt for c in cases}) == size


# --- independent checks of the answers -------------------------------------------------------


def test_coinflip_answers_by_simulation() -> None:
    for case in make_suite("coinflip", 200, seed=1):
        assert case.prompt.startswith("A coin is heads up. ")
        assert case.prompt.endswith(" Is the coin still heads up? Answer yes or no.")
        steps = re.findall(r"([A-Z][a-z]+) (flips|does not flip) the coin\.", case.prompt)
        assert 2 <= len(steps) <= 4
        assert len({who for who, _ in steps}) == len(steps)
        heads_up = True
        for _, action in steps:
            if action == "flips":
                heads_up = not heads_up
        assert case.answer == ("yes" if heads_up else "no")
    answers = {c.answer for c in make_suite("coinflip", 40)}
    assert answers == {"yes", "no"}


def test_last_letters_recomputed_from_the_prompt() -> None:
    for case in make_suite("last_letters", 200, seed=2):
        quoted = re.search(r'"([^"]+)"', case.prompt)
        assert quoted is not None
        expected = "".join(re.findall(r"(\w)\b", quoted.group(1))).lower()
        assert case.answer == expected
        assert 2 <= len(expected) <= 4


def _solve(prompt: str) -> Fraction:
    """An independent solver for the five arithmetic templates."""
    numbers = [Fraction(int(x)) for x in re.findall(r"\d+", prompt)]
    if "more" in prompt:
        return numbers[0] + numbers[1]
    if "have left" in prompt:
        return numbers[0] - numbers[1]
    if "boxes" in prompt:
        return numbers[0] * numbers[1]
    if "equally" in prompt:
        return numbers[0] / numbers[1]
    if "packs" in prompt:
        return numbers[0] * numbers[1] - numbers[2]
    raise AssertionError(f"unknown template: {prompt}")


def test_arithmetic_answers_recomputed_from_the_prompt() -> None:
    kinds = set()
    for case in make_suite("arithmetic", 300, seed=5):
        value = _solve(case.prompt)
        assert value.denominator == 1
        assert value > 0
        assert case.answer == str(value.numerator)
        kinds.add(
            next(k for k in ("more", "left", "boxes", "equally", "packs") if k in case.prompt)
        )
    assert kinds == {"more", "left", "boxes", "equally", "packs"}


def _reference_pig_latin(word: str) -> str:
    match = re.fullmatch(r"([^aeiou]*)([aeiou][a-z]*)", word)
    assert match is not None, word
    onset, rest = match.groups()
    return f"{rest}{onset}ay" if onset else f"{word}way"


def test_pig_latin_answers_match_a_reference_implementation() -> None:
    for case in make_suite("pig_latin", 200, seed=7):
        phrase = case.prompt.rsplit("Phrase: ", 1)[1]
        words = phrase.split(" ")
        assert 2 <= len(words) <= 4
        assert case.answer == " ".join(_reference_pig_latin(w) for w in words)


def test_pig_latin_vocabulary_is_unambiguous() -> None:
    for word in generators.PIG_LATIN_WORDS:
        assert word.isalpha() and word.islower()
        assert not word.startswith("qu")
        first_vowel = min(word.index(v) for v in "aeiou" if v in word)
        assert "y" not in word[:first_vowel]


@pytest.mark.parametrize(
    ("word", "expected"),
    [("happy", "appyhay"), ("string", "ingstray"), ("apple", "appleway"), ("the", "ethay")],
)
def test_to_pig_latin_hand_checked(word: str, expected: str) -> None:
    assert generators.to_pig_latin(word) == expected


def test_to_pig_latin_rejects_a_word_without_vowels() -> None:
    with pytest.raises(HAGInputError):
        generators.to_pig_latin("rhythm")


def test_keyword_cases() -> None:
    for case in make_suite("keywords", 100, seed=9):
        assert case.keywords is not None
        assert len(case.keywords) == len(set(case.keywords)) == 3
        listed = case.prompt.split(": ", 1)[1].rstrip(".").split(", ")
        assert listed == case.keywords


# --- translations ----------------------------------------------------------------------------

TRANSLATIONS = Path(hag_agent.data.__file__).parent / "translations.jsonl"


def test_translation_file_rows() -> None:
    rows = [json.loads(line) for line in TRANSLATIONS.read_text("utf-8").splitlines()]
    assert len(rows) >= 60
    for row in rows:
        assert set(row) == {"en", "fr", "de", "es"}
        assert all(isinstance(v, str) and v.strip() == v and v for v in row.values())
        assert len({row["en"], row["fr"], row["de"], row["es"]}) == 4
    english = [row["en"] for row in rows]
    assert len(set(english)) == len(english)
    loaded = generators.load_translations()
    assert [t.model_dump() for t in loaded] == rows


def test_translation_cases_point_at_their_row() -> None:
    rows = generators.load_translations()
    cases = make_suite("translation", 3 * len(rows), seed=0)
    assert len({c.id for c in cases}) == 3 * len(rows)
    names = {"fr": "French", "de": "German", "es": "Spanish"}
    for case in cases:
        match = re.fullmatch(r"translation-(fr|de|es)-(\d{3})", case.id)
        assert match is not None
        lang, row = match.group(1), rows[int(match.group(2))]
        assert case.prompt == f"Translate into {names[lang]}: {row.en}"
        assert case.reference == getattr(row, lang)
    with pytest.raises(HAGInputError, match="at most"):
        make_suite("translation", 3 * len(rows) + 1)


# --- the held-out suites ---------------------------------------------------------------------

DATA = Path(hag_agent.data.__file__).parent

_WRONG = ("I don't know.", "", "Sure! Here is my answer.")
"""Replies no held-out case accepts."""


def _copy_answer(prompt: str) -> str:
    """An independent reading of a copy_exact prompt: the operation, then the text after it."""
    instruction, text = prompt.split(": ", 1)
    if instruction.startswith("Repeat exactly"):
        return text
    if "capital letters" in instruction:
        return "".join(c.upper() for c in text)
    if "lowercase letters" in instruction:
        return "".join(c.lower() for c in text)
    assert instruction.startswith("Reverse the order of these words"), prompt
    return " ".join(text.split(" ")[::-1])


def test_copy_exact_answers_recomputed_from_the_prompt() -> None:
    kinds = set()
    for case in make_suite("copy_exact", 200, seed=3):
        assert case.answer == _copy_answer(case.prompt)
        assert case.prompt.split(": ", 1)[1].strip()
        kinds.add(case.prompt.split(",", 1)[0])
        if case.prompt.startswith("Reverse"):
            assert 3 <= len(case.prompt.split(": ", 1)[1].split()) <= 5
    assert len(kinds) == 4


def test_copy_texts_make_case_and_punctuation_matter() -> None:
    texts = generators.COPY_TEXTS
    assert len(texts) >= 30
    assert len(set(texts)) == len(texts)
    for text in texts:
        assert text == text.strip() and ": " not in text
        assert text != text.upper() and text != text.lower()  # capitals and lowercase differ
        assert text[-1] in ".!"
    with pytest.raises(HAGInputError, match="unknown copy operation"):
        generators.copy_text("shuffle", "a b")


def test_short_facts_file_rows() -> None:
    rows = [
        json.loads(line) for line in (DATA / "short_facts.jsonl").read_text("utf-8").splitlines()
    ]
    assert len(rows) >= 40
    prompts = [row["prompt"] for row in rows]
    assert len(set(prompts)) == len(prompts)
    for row in rows:
        assert set(row) == {"prompt", "answers"}
        assert row["prompt"].endswith(("Answer with one word.", "Answer with a number."))
        assert row["answers"] and len(set(row["answers"])) == len(row["answers"])
    assert [r.model_dump() for r in generators.load_short_facts()] == [
        {"prompt": row["prompt"], "answers": tuple(row["answers"])} for row in rows
    ]


def test_chat_request_file_lists_and_requests() -> None:
    table = json.loads((DATA / "chat_requests.json").read_text("utf-8"))
    named = table["answers"]
    used = {request["answers"] for request in table["requests"]}
    assert used == set(named)  # every list is used, every request names a list
    for words in named.values():
        assert len(words) == len(set(words)) >= 4  # an open class, not one right answer
    loaded = generators.load_chat_requests()
    assert len(loaded) == len(table["requests"]) >= 30
    for row, request in zip(loaded, table["requests"], strict=True):
        assert row.prompt == request["prompt"]
        assert row.answers == tuple(named[request["answers"]])
        assert "one word" in row.prompt or "single word" in row.prompt


@pytest.mark.parametrize(
    ("name", "rows"),
    [("short_facts", generators.load_short_facts), ("chat_reply", generators.load_chat_requests)],
)
def test_table_suites_point_at_their_row(
    name: str, rows: Callable[[], tuple[generators.AcceptedAnswers, ...]]
) -> None:
    table = rows()
    cases = make_suite(name, len(table), seed=0)
    assert sorted(int(c.id.rsplit("-", 1)[1]) for c in cases) == list(range(len(table)))
    for case in cases:
        match = re.fullmatch(rf"{name}-(\d{{3}})", case.id)
        assert match is not None
        row = table[int(match.group(1))]
        assert case.prompt == row.prompt
        assert case.answers == list(row.answers)
    assert make_suite(name) == cases  # the default is the whole table, seed 0
    with pytest.raises(HAGInputError, match="at most"):
        make_suite(name, len(table) + 1)


@pytest.mark.parametrize("name", HELD_OUT_SUITES)
def test_held_out_metric_scores_right_answers_1_and_wrong_ones_0(name: str) -> None:
    spec = builtin_suites()[name]
    cases = make_suite(name, spec.max_size or 100, seed=5)
    for case in cases:
        rights = case.answers if case.answers is not None else [case.answer or ""]
        for right in rights:
            assert metric_value(case, right) == 1.0, (case.id, right)
            assert metric_value(case, f"{right}\n") == 1.0, (case.id, right)
        for wrong in _WRONG:
            assert metric_value(case, wrong) == 0.0, (case.id, wrong)
        if case.answers is not None:
            named = f"I think it is {case.answers[0]}. Thanks for asking!"
            assert metric_value(case, named) == ONE_OF_MENTION_CREDIT, case.id
            assert metric_value(case, case.prompt) == 0.0, case.id  # an echo names no answer
    # Another case's answer is wrong unless this case accepts it too.
    for case, other in zip(cases, cases[1:] + cases[:1], strict=True):
        theirs = other.answers[0] if other.answers is not None else other.answer or ""
        accepted = case.answers if case.answers is not None else [case.answer or ""]
        if theirs.lower() not in {a.lower() for a in accepted}:
            assert metric_value(case, theirs) == 0.0, (case.id, theirs)


def test_copy_exact_is_scored_case_and_punctuation_sensitive() -> None:
    for case in make_suite("copy_exact", 60, seed=1):
        answer = case.answer or ""
        assert metric_value(case, f"Here it is: {answer}") == 1.0
        assert metric_value(case, f'"{answer}"') == 1.0
        if answer.swapcase() != answer:
            assert metric_value(case, answer.swapcase()) == 0.0
        if answer[-1] in ".!":
            assert metric_value(case, answer[:-1]) == 0.0


@pytest.mark.parametrize("name", HELD_OUT_SUITES)
def test_held_out_prompts_are_classified_as_their_task(name: str) -> None:
    spec = builtin_suites()[name]
    for case in make_suite(name, spec.max_size or 200, seed=2):
        kind, reason = classify_by_rules(case.prompt)
        assert kind is spec.task, (case.prompt, reason)


def test_held_out_prompts_are_not_training_prompts() -> None:
    training = {
        c.prompt for name in TRAINING_SUITES + DECODING_SUITES for c in make_suite(name, 60, seed=0)
    }
    for name in HELD_OUT_SUITES:
        assert not training & {c.prompt for c in make_suite(name, 30, seed=0)}


def test_eval_loads_the_held_out_suites_together() -> None:
    cases = load_suites(
        "short_facts,copy_exact,chat_reply", limit=2, on_bad_line="fail", warn=lambda _: None
    )
    assert [c.id.rsplit("-", 1)[0] for c in cases] == [
        "short_facts", "short_facts", "copy_exact-0", "copy_exact-0", "chat_reply", "chat_reply"
    ]  # fmt: skip
    assert cases[:2] == make_suite("short_facts", 2, seed=0)
    assert len({c.id for c in cases}) == 6


# --- make_suite / load_cases / write_cases ---------------------------------------------------


def test_make_suite_errors() -> None:
    with pytest.raises(HAGInputError, match="coinflip, last_letters, arithmetic"):
        make_suite("nope")
    with pytest.raises(HAGInputError, match="at least 1"):
        make_suite("coinflip", 0)


@pytest.mark.parametrize("name", SUITES)
def test_load_cases_by_name_is_the_default_suite(name: str) -> None:
    assert load_cases(name) == make_suite(name, seed=0)


def test_load_cases_unknown_name_lists_the_suites() -> None:
    with pytest.raises(HAGInputError, match=r"built-in suites: coinflip, .*keywords"):
        load_cases("coinflips")
    with pytest.raises(HAGInputError, match="no such suite file"):
        load_cases("missing/cases.jsonl")


def test_round_trip(tmp_path: Path) -> None:
    cases = [case for name in SUITES for case in make_suite(name, 4, seed=1)]
    path = tmp_path / "sub" / "cases.jsonl"
    write_cases(cases, path)
    assert load_cases(path) == cases
    assert load_cases(str(path)) == cases
    first = json.loads(path.read_text("utf-8").splitlines()[0])
    assert "reference" not in first  # unset fields are left out
    assert list(tmp_path.joinpath("sub").iterdir()) == [path]  # no temporary file left


def test_write_keeps_unicode_readable(tmp_path: Path) -> None:
    case = SuiteCase(id="x", task=TaskKind.TRANSLATION, prompt="p", reference="Ma sœur")
    path = tmp_path / "c.jsonl"
    write_cases([case], path)
    assert "sœur" in path.read_text("utf-8")


GOOD = {"id": "a", "task": "math", "prompt": "1+1?", "answer": "2"}


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_malformed_lines_fail_with_their_line_number(tmp_path: Path) -> None:
    path = _write_lines(tmp_path / "bad.jsonl", [json.dumps(GOOD), "", "{not json"])
    with pytest.raises(SuiteFormatError, match=r"bad\.jsonl:3: not JSON") as caught:
        load_cases(path)
    assert caught.value.line == 3
    assert isinstance(caught.value, HAGInputError)


def test_malformed_lines_are_skipped_with_a_warning(tmp_path: Path) -> None:
    lines = [
        json.dumps(GOOD),
        "{not json",
        json.dumps({"id": "b", "task": "math", "answer": "2"}),
        json.dumps({**GOOD, "id": "c", "task": "poetry"}),
        json.dumps({**GOOD, "id": "d", "metric": "bleu"}),
        "[1, 2]",
        json.dumps({**GOOD, "id": "e", "colour": "red"}),
        json.dumps({**GOOD, "id": "f"}),
    ]
    path = _write_lines(tmp_path / "mixed.jsonl", lines)
    warnings: list[str] = []
    cases = load_cases(path, on_bad_line="skip", warn=warnings.append)
    assert [c.id for c in cases] == ["a", "f"]
    assert len(warnings) == 6
    for number, message in zip((2, 3, 4, 5, 6, 7), warnings, strict=True):
        assert f"mixed.jsonl:{number}:" in message
    assert "prompt" in warnings[1] and "required" in warnings[1].lower()
    assert "unknown task 'poetry'" in warnings[2]
    assert "math, reasoning, translation, creative, code, factual, chat" in warnings[2]
    assert "unknown metric 'bleu'" in warnings[3]
    assert "exact, number, yes_no, chrf, coverage" in warnings[3]
    assert "JSON object" in warnings[4]
    assert "colour" in warnings[5]


def test_skip_without_warn_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = _write_lines(tmp_path / "c.jsonl", [json.dumps(GOOD), "nope"])
    assert len(load_cases(path, on_bad_line="skip")) == 1
    assert "c.jsonl:2" in caplog.text


def test_unknown_task_fails_listing_valid_tasks(tmp_path: Path) -> None:
    path = _write_lines(tmp_path / "t.jsonl", [json.dumps({**GOOD, "task": "poetry"})])
    with pytest.raises(SuiteFormatError, match=r"t\.jsonl:1: task: unknown task 'poetry'; valid"):
        load_cases(path)


def test_duplicate_ids_are_an_error_even_when_skipping(tmp_path: Path) -> None:
    path = _write_lines(tmp_path / "d.jsonl", [json.dumps(GOOD), "oops", json.dumps(GOOD)])
    with pytest.raises(SuiteFormatError, match=r"d\.jsonl:3: duplicate id 'a' \(first on line 1\)"):
        load_cases(path, on_bad_line="skip", warn=lambda _: None)


def test_a_file_without_cases_is_an_error(tmp_path: Path) -> None:
    path = _write_lines(tmp_path / "e.jsonl", ["", "garbage"])
    with pytest.raises(SuiteFormatError, match="no usable cases"):
        load_cases(path, on_bad_line="skip", warn=lambda _: None)


# --- SuiteCase -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "metric"),
    [
        ({"task": "math", "answer": "14"}, "number"),
        ({"task": "reasoning", "answer": "Yes"}, "yes_no"),
        ({"task": "reasoning", "answer": "nk"}, "exact"),
        ({"task": "translation", "reference": "Bonjour"}, "chrf"),
        ({"task": "translation", "answer": "Bonjour"}, "exact"),
        ({"task": "creative", "keywords": ["dog"]}, "coverage"),
        ({"task": "chat", "reference": "hi"}, "chrf"),
        ({"task": "factual", "keywords": ["Paris"]}, "coverage"),
        ({"task": "factual", "answers": ["Paris"]}, "one_of"),
        ({"task": "chat", "answers": ["tea"], "answer": "tea"}, "exact"),
        ({"task": "chat", "answer": "Tea.", "metric": "verbatim"}, "verbatim"),
        ({"task": "math", "answer": "x = 2", "metric": "exact"}, "exact"),
        ({"task": "creative", "count": 40}, "loop_free_length"),
        ({"task": "creative", "keywords": ["dog"], "count": 40}, "coverage"),
        ({"task": "creative", "answers": ["oak"], "count": 4}, "one_of"),
    ],
)
def test_metric_name_defaults(fields: dict[str, object], metric: str) -> None:
    case = SuiteCase.model_validate({"id": "x", "prompt": "p", **fields})
    assert case.metric_name == metric


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"task": "math"}, "one of answer, answers, reference, keywords or count"),
        ({"task": "creative", "count": 0}, "greater than or equal to 1"),
        ({"task": "creative", "answers": ["oak"], "metric": "distinct_items"}, "field 'count'"),
        ({"task": "chat", "answers": []}, "answers must be a non-empty list"),
        ({"task": "chat", "answers": ["tea", " "]}, "answers must be a non-empty list"),
        ({"task": "chat", "answer": "tea", "metric": "one_of"}, "needs the field 'answers'"),
        ({"task": "math", "answer": "2", "metric": "chrf"}, "needs the field 'reference'"),
        ({"task": "math", "answer": "two"}, "numeric answer"),
        ({"task": "reasoning", "answer": "maybe", "metric": "yes_no"}, "'yes' or 'no'"),
        ({"task": "creative", "keywords": []}, "non-empty"),
        ({"task": "math", "answer": "2", "id": ""}, "at least 1 character"),
    ],
)
def test_invalid_cases(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SuiteCase.model_validate({"id": "x", "prompt": "p", **fields})


def test_number_answer_may_have_thousands_commas() -> None:
    case = SuiteCase(id="x", task=TaskKind.MATH, prompt="p", answer="1,200")
    assert case.metric_name == "number"


def test_readme_lists_the_held_out_and_decoding_suites_as_they_are() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text("utf-8")
    rows = {
        cells[0]: cells[1:4]
        for line in readme.splitlines()
        if line.startswith("| ")
        and len(cells := [c.strip() for c in line.strip("|").split("|")]) > 4
    }
    for name in HELD_OUT_SUITES + DECODING_SUITES:
        spec = builtin_suites()[name]
        size = "any" if spec.max_size is None else str(spec.max_size)
        assert rows[name] == [spec.task.value, spec.metric, size], name
    for name in TRAINING_SUITES:
        assert name in readme
