"""Metrics of the task suites: one sample's value, and the search/eval score of K samples.

Per sample (`metric_value`, every value in [0, 1]):

| metric   | case field  | value                                                           |
|----------|-------------|-----------------------------------------------------------------|
| exact    | `answer`    | 1 if a normalised answer candidate equals the answer (`exact_match`) |
| number   | `answer`    | 1 if `final_number` equals the answer (relative tolerance 1e-6)  |
| yes_no   | `answer`    | 1 if `parse_yes_no` agrees with the answer                       |
| chrf     | `reference` | sacrebleu sentence chrF / 100                                    |
| coverage | `keywords`  | fraction of keywords used, inflections counted (`keyword_coverage`) |
| verbatim | `answer`    | as exact, but case and punctuation count (`verbatim_match`)     |
| one_of   | `answers`   | 1 for an accepted answer, 0.5 for naming one (`one_of_match`)   |

Over K samples, `score_outputs` is the mean value, plus a diversity term for creative cases.
sacrebleu is imported only by `chrf` and `self_bleu` (the ``eval`` extra).
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections.abc import Callable, Sequence

from hag_agent.data.cases import SuiteCase
from hag_agent.errors import ConfigurationError, HAGInputError
from hag_agent.ngrams import WORD, distinct_ratio
from hag_agent.tasks import TaskKind

DIVERSITY_WEIGHT = 0.2
"""Weight of the diversity term in the score of creative cases (`score_outputs`)."""

OPEN_ENDED_METRICS = frozenset({"coverage", "loop_free_length"})
"""Metrics of open-ended writing: a creative case scored by one also rewards varied samples."""

NUMBER_TOLERANCE = 1e-6
"""Relative tolerance of the number metric."""

ONE_OF_MENTION_CREDIT = 0.5
"""The one_of value of a reply that names an accepted answer but is not just that answer."""

_ANSWER_MARKER = re.compile(r"\banswer\b\**\s*(?:is\b\s*:?|[:=])", re.IGNORECASE)
_NUMBER = re.compile(
    r"(?<![\w.])[-\u2212]?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)",
)
_YES_NO = re.compile(r"\b(yes|no)\b", re.IGNORECASE)
_LETTER_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*")
_QUOTES = "\"'`\u2018\u2019\u201c\u201d"
_ARTICLES = ("a", "an", "the")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n")
_LIST_MARKER = re.compile(r"^\s*(?:\(?\d+[.):]|[-*\u2022])\s*")
_ITEM_TAIL = re.compile(r"\s*(?::|\s[-\u2013\u2014]\s|\().*$")


def _missing_sacrebleu(exc: ImportError) -> ConfigurationError:
    return ConfigurationError(
        f"this metric needs sacrebleu, which is not installed ({exc}); "
        "pip install 'hag-agent[eval]'"
    )


def _clamp(value: float) -> float:
    if math.isnan(value):
        return 0.0
    return min(1.0, max(0.0, value))


def _last_marker_end(text: str) -> int | None:
    """Where the text after the last "answer is" / "answer:" marker starts, if any."""
    matches = list(_ANSWER_MARKER.finditer(text))
    return matches[-1].end() if matches else None


def normalize_answer(text: str) -> str:
    """Lowercase, drop punctuation and symbols (Unicode P* and S*), collapse whitespace."""
    text = unicodedata.normalize("NFKC", text).lower()
    kept = "".join(c for c in text if not unicodedata.category(c).startswith(("P", "S")))
    return " ".join(kept.split())


def _answer_candidates(text: str) -> list[str]:
    """The parts of an output that may be its answer (see `exact_match`)."""
    candidates = [text]
    end = _last_marker_end(text)
    if end is not None:
        candidates.append(text[end:].strip().split("\n", 1)[0])
    lines = [line for line in text.splitlines() if line.strip()]
    if lines:
        candidates.append(lines[-1])
        candidates.append(lines[-1].rsplit(":", 1)[-1])
    return candidates


def exact_match(output: str, answer: str) -> float:
    """1.0 when the output gives exactly the answer, after normalisation, else 0.0.

    Case, punctuation (hyphens and quotes included) and runs of whitespace are ignored
    (`normalize_answer`). Candidates: the whole output, the rest of the line after its last
    "answer is" / "answer:", its last non-empty line, and that line after its last colon.
    """
    gold = normalize_answer(answer)
    return float(any(normalize_answer(c) == gold for c in _answer_candidates(output)))


def verbatim_match(output: str, answer: str) -> float:
    """1.0 when the output gives the answer character for character, else 0.0.

    Case and punctuation count: only Unicode compatibility forms (NFKC), runs of whitespace and
    quotes around the whole candidate are forgiven. Candidates as for `exact_match`, so a
    "Here it is: ..." before the copy does not count against it.
    """

    def plain(text: str) -> str:
        return " ".join(unicodedata.normalize("NFKC", text).split()).strip(_QUOTES).strip()

    gold = plain(answer)
    return float(any(plain(c) == gold for c in _answer_candidates(output)))


def accepted_forms(answers: Sequence[str]) -> set[tuple[str, ...]]:
    """Each answer's words after `normalize_answer`, its last word in every inflection."""
    accepted: set[tuple[str, ...]] = set()
    for answer in answers:
        words = normalize_answer(answer).split()
        if words:
            *head, last = words
            accepted |= {(*head, form) for form in inflections(last)}
    return accepted


def _without_article(words: list[str]) -> tuple[str, ...]:
    """The words, a leading "a", "an" or "the" dropped."""
    return tuple(words[1:] if words and words[0] in _ARTICLES else words)


def one_of_match(output: str, answers: Sequence[str]) -> float:
    """1.0 for a reply that is one of the accepted answers, 0.5 for one that names it, else 0.0.

    Both tiers compare words after `normalize_answer`, and an accepted answer's last word may be
    inflected (`inflections`: "bananas" for "banana").

    - 1.0: a candidate (as for `exact_match`), a leading "a", "an" or "the" dropped, is a whole
      accepted answer: the request's "answer in one word" was followed ("A banana.").
    - `ONE_OF_MENTION_CREDIT` (0.5): the reply's first sentence names an accepted answer ("The
      capital of Italy is Rome."): right, but not in one word. Later sentences do not count, so
      a long reply does not earn the credit by listing many words.
    """
    accepted = accepted_forms(answers)
    for candidate in _answer_candidates(output):
        if _without_article(normalize_answer(candidate).split()) in accepted:
            return 1.0
    first = normalize_answer(_SENTENCE_END.split(output.strip(), maxsplit=1)[0]).split()
    named = any(
        tuple(first[i : i + len(phrase)]) == phrase
        for phrase in accepted
        for i in range(len(first) - len(phrase) + 1)
    )
    return ONE_OF_MENTION_CREDIT if named else 0.0


def list_items(text: str) -> list[str]:
    """A list answer's items: its non-empty lines, or a one-line answer's comma-separated parts.

    A leading number or bullet ("1.", "2)", "-", "*") and a trailing description (after ":",
    " - " or "(") are dropped from each item.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) == 1:
        lines = lines[0].split(",")
    items = [_ITEM_TAIL.sub("", _LIST_MARKER.sub("", line)).strip() for line in lines]
    return [item for item in items if item]


def distinct_items(output: str, accepted: Sequence[str], count: int) -> float:
    """How well a list answer gives ``count`` different accepted items, and nothing else, in [0, 1].

    ``accepted`` entries may name one item in several spellings separated by ``|``
    ("usa|united states"): those count as one item. The score is the number of different
    accepted items named (at most ``count``) over ``count`` or the number of items listed,
    whichever is larger: a repeat, a wrong item, a preamble line or items past ``count`` each
    cost their share. Items are matched as in `one_of_match` (case, punctuation, a leading
    article and a regular plural forgiven).
    """
    groups = _item_forms(tuple(accepted))
    items = list_items(output)
    named: set[int] = set()
    for item in items:
        words = _without_article(normalize_answer(item).split())
        match = next((i for i, forms in enumerate(groups) if words in forms), None)
        if match is not None:
            named.add(match)
    return min(len(named), count) / max(count, len(items))


@functools.lru_cache(maxsize=256)
def _item_forms(accepted: tuple[str, ...]) -> tuple[frozenset[tuple[str, ...]], ...]:
    # A case's accepted forms, built once for all its samples (a grid scores K of each).
    return tuple(frozenset(accepted_forms(entry.split("|"))) for entry in accepted)


def loop_free_length(output: str, count: int) -> float:
    """An open continuation's length against ``count`` words, times its share of distinct 3-grams.

    The length factor is 1 from ``count`` to twice ``count`` words, the share of ``count`` below
    and ``2 * count`` over the length above; the distinct-3-gram ratio (`distinct_n`) falls as
    the text loops. 0 for an empty text.
    """
    words = len(_words(output))
    if words == 0:
        return 0.0
    length = words / count if words < count else min(1.0, 2 * count / words)
    return length * distinct_n([output], 3)


def final_number(text: str) -> float | None:
    """The number a text answers with, or None.

    Numbers may carry a sign, thousands commas and decimals ("$1,200" -> 1200, "-3.5"); a
    trailing period is not a decimal point ("The answer is 14." -> 14). When the text says
    "answer is" / "answer:" (the last such marker counts), the first number after it wins
    ("The answer is 14 (7 x 2)" -> 14); otherwise the last number in the text ("= 42" -> 42).
    """
    end = _last_marker_end(text)
    if end is not None:
        match = _NUMBER.search(text, end)
        if match is not None:
            return _to_float(match.group())
    numbers = _NUMBER.findall(text)
    return _to_float(numbers[-1]) if numbers else None


def _to_float(token: str) -> float:
    return float(token.replace(",", "").replace("\u2212", "-"))


def parse_yes_no(text: str) -> bool | None:
    """True for yes, False for no, None when the text says neither.

    In order: the first yes/no after the last "answer is" / "answer:" marker; the text's first
    word when it is yes or no ("No, because ..."); else the last standalone yes/no.
    """
    end = _last_marker_end(text)
    if end is not None:
        match = _YES_NO.search(text, end)
        if match is not None:
            return str(match.group(1)).lower() == "yes"
    words: list[str] = WORD.findall(text)
    if words and words[0].lower() in ("yes", "no"):
        return words[0].lower() == "yes"
    found: list[str] = _YES_NO.findall(text)
    return found[-1].lower() == "yes" if found else None


def chrf(hypothesis: str, reference: str) -> float:
    """Sentence chrF (sacrebleu defaults: character 6-grams, beta 2) divided by 100.

    Raises:
        ConfigurationError: sacrebleu is not installed.
    """
    try:
        from sacrebleu import sentence_chrf
    except ImportError as exc:
        raise _missing_sacrebleu(exc) from exc
    return _clamp(sentence_chrf(hypothesis.strip(), [reference.strip()]).score / 100.0)


def _words(text: str) -> list[str]:
    """Lowercase letter words, possessive "'s" (and a bare trailing "'") dropped."""
    words = []
    for word in _LETTER_WORD.findall(unicodedata.normalize("NFKC", text).lower()):
        if word.endswith("'s"):
            word = word[:-2]
        words.append(word.rstrip("'"))
    return words


def inflections(word: str) -> frozenset[str]:
    """The regular English inflections of a lowercase word, the word itself included.

    Adds -s, -es, -ed, -ing; after a final "e": -d and the "e" dropped before -ing; after a
    consonant plus "y": -ies and -ied; after consonant-vowel-consonant (not w, x, y): the final
    consonant doubled before -ed/-ing; a final "f"/"fe": -ves. Irregular forms (mice, ran) are
    not covered.
    """
    forms = {word, word + "s", word + "es", word + "ed", word + "ing"}
    vowels = "aeiou"
    if word.endswith("e"):
        forms |= {word + "d", word[:-1] + "ing"}
    if len(word) > 1 and word.endswith("y") and word[-2] not in vowels:
        forms |= {word[:-1] + "ies", word[:-1] + "ied"}
    if (
        len(word) >= 3
        and word[-1] not in vowels + "wxy"
        and word[-2] in vowels
        and word[-3] not in vowels
    ):
        forms |= {word + word[-1] + "ed", word + word[-1] + "ing"}
    if word.endswith("fe"):
        forms.add(word[:-2] + "ves")
    elif word.endswith("f"):
        forms.add(word[:-1] + "ves")
    return frozenset(forms)


def keyword_coverage(text: str, keywords: Sequence[str]) -> float:
    """The fraction of keywords the text uses; 1.0 for no keywords.

    Matching is by whole word and ignores case; a keyword also counts in any regular
    inflection (`inflections`: "dogs" and "dog's" for "dog", "danced" for "dance", "berries" for
    "berry", "running" for "run"), never as part of a longer word ("dogma" is not "dog"). A
    keyword of several words must appear as consecutive words, its last word possibly
    inflected.
    """
    if not keywords:
        return 1.0
    words = _words(text)
    hits = 0
    for keyword in keywords:
        parts = _words(keyword)
        if not parts:
            continue
        *head, last = parts
        forms = inflections(last)
        width = len(parts)
        if any(
            words[i : i + width - 1] == head and words[i + width - 1] in forms
            for i in range(len(words) - width + 1)
        ):
            hits += 1
    return hits / len(keywords)


def distinct_n(texts: Sequence[str], n: int) -> float:
    r"""Distinct-n (Li et al. 2016): unique n-grams over all n-grams of the texts, in [0, 1].

    Tokens are lowercase ``\w+`` words; n-grams do not cross texts. 0.0 when there are none.

    Raises:
        HAGInputError: n is below 1.
    """
    if n < 1:
        raise HAGInputError(f"distinct_n needs n >= 1, got {n}")
    # No n-gram at all is no diversity (the critique reads it as no repetition instead).
    ratio = distinct_ratio(texts, n)
    return 0.0 if ratio is None else ratio


def self_bleu(texts: Sequence[str]) -> float:
    """Self-BLEU (Zhu et al. 2018): mean sentence BLEU of each text against all the others / 100.

    sacrebleu ``sentence_bleu`` with its defaults (13a tokens, exp smoothing, effective order).
    1.0 means the texts repeat each other; 0.0 for fewer than two texts.

    Raises:
        ConfigurationError: sacrebleu is not installed.
    """
    if len(texts) < 2:
        return 0.0
    try:
        from sacrebleu import sentence_bleu
    except ImportError as exc:
        raise _missing_sacrebleu(exc) from exc
    scores = [
        sentence_bleu(text, [other for j, other in enumerate(texts) if j != i]).score / 100.0
        for i, text in enumerate(texts)
    ]
    return _clamp(sum(scores) / len(scores))


def _metric_exact(case: SuiteCase, output: str) -> float:
    return exact_match(output, case.answer or "")


def _metric_verbatim(case: SuiteCase, output: str) -> float:
    return verbatim_match(output, case.answer or "")


def _metric_one_of(case: SuiteCase, output: str) -> float:
    return one_of_match(output, case.answers or [])


def _metric_distinct_items(case: SuiteCase, output: str) -> float:
    return distinct_items(output, case.answers or [], case.count or 1)


def _metric_loop_free_length(case: SuiteCase, output: str) -> float:
    return loop_free_length(output, case.count or 1)


def _metric_number(case: SuiteCase, output: str) -> float:
    predicted = final_number(output)
    if predicted is None:
        return 0.0
    gold = _to_float((case.answer or "").strip())
    return float(abs(predicted - gold) <= NUMBER_TOLERANCE * max(1.0, abs(gold)))


def _metric_yes_no(case: SuiteCase, output: str) -> float:
    said = parse_yes_no(output)
    if said is None:
        return 0.0
    return float(said == ((case.answer or "").strip().lower() == "yes"))


def _metric_chrf(case: SuiteCase, output: str) -> float:
    return chrf(output, case.reference or "")


def _metric_coverage(case: SuiteCase, output: str) -> float:
    return keyword_coverage(output, case.keywords or [])


METRICS: dict[str, Callable[[SuiteCase, str], float]] = {
    "exact": _metric_exact,
    "number": _metric_number,
    "yes_no": _metric_yes_no,
    "chrf": _metric_chrf,
    "coverage": _metric_coverage,
    "verbatim": _metric_verbatim,
    "one_of": _metric_one_of,
    "distinct_items": _metric_distinct_items,
    "loop_free_length": _metric_loop_free_length,
}
"""Every metric by name: ``METRICS[name](case, output)`` is one sample's value in [0, 1]."""


def metric_value(case: SuiteCase, output: str) -> float:
    """One sample's value in [0, 1] under the case's metric (`SuiteCase.metric_name`)."""
    return _clamp(METRICS[case.metric_name](case, output))


def score_outputs(case: SuiteCase, outputs: Sequence[str]) -> float:
    """The search/eval score of K samples of one case, in [0, 1].

    ``quality`` is the mean `metric_value` of the samples. For a creative case of open-ended
    writing (task creative, metric in `OPEN_ENDED_METRICS`) with at least two samples the score
    is ``0.8 * quality + 0.2 * distinct_n(outputs, 2) * (1 - self_bleu(outputs))``
    (`DIVERSITY_WEIGHT` = 0.2): samples that all use the keywords but repeat each other score
    below varied ones. Every other case (a list or an exact copy: one right answer is as good as
    varied ones), and a case with one sample (whose diversity cannot be measured), scores
    ``quality``.

    Raises:
        HAGInputError: No outputs.
    """
    if not outputs:
        raise HAGInputError(f"case {case.id!r}: no outputs to score")
    quality = sum(metric_value(case, output) for output in outputs) / len(outputs)
    open_ended = case.task is TaskKind.CREATIVE and case.metric_name in OPEN_ENDED_METRICS
    if not open_ended or len(outputs) < 2:
        return quality
    diversity = distinct_n(outputs, 2) * (1.0 - self_bleu(outputs))
    return _clamp((1.0 - DIVERSITY_WEIGHT) * quality + DIVERSITY_WEIGHT * diversity)
