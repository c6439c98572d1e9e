"""Seeded generators of the built-in suites: one function per suite, ``(n, seed) -> cases``.

Each generator draws from ``random.Random(seed)`` only, so the same ``n`` and ``seed`` give the
same cases on any machine, and a larger ``n`` extends a smaller one (same seed, same first
cases). Every answer is computed from the very values written into the prompt; the tests check
each answer again, independently, from the prompt text. Prompts within one suite are distinct.
Ids are ``"{suite}-{seed}-{index:03d}"`` (translation: the row and the language,
``"translation-fr-007"``; the hand-written tables of short_facts and chat_reply: the row,
``"short_facts-012"``).

The held-out suites (short_facts, copy_exact, chat_reply) are request kinds and prompt styles
that the six training suites do not hold: one-word factual questions, exact copies, and small
conversational requests with a checkable answer.
"""

from __future__ import annotations

import functools
import json
import random
from collections.abc import Callable
from importlib import resources

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hag_agent.data.cases import SuiteCase
from hag_agent.errors import HAGInputError
from hag_agent.tasks import TaskKind

NAMES: tuple[str, ...] = (
    "Ann", "Bob", "Carla", "David", "Elena", "Frank", "Grace", "Hugo", "Irene", "Jamal",
    "Kofi", "Laura", "Mateo", "Nina", "Oscar", "Priya", "Quinn", "Rosa", "Samir", "Tomas",
    "Uma", "Victor", "Wendy", "Xavier", "Yusuf", "Zoe", "Amir", "Beatriz", "Chen", "Dmitri",
    "Emma", "Fatima", "Gustav", "Hana", "Ivan", "Julia", "Kenji", "Lucas", "Maya", "Noah",
)  # fmt: skip
"""First names used by CoinFlip, last letters and the word problems (all distinct)."""

PIG_LATIN_WORDS: tuple[str, ...] = (
    "apple", "orange", "egg", "ice", "under", "open", "island", "old", "every", "each",
    "happy", "green", "blue", "dog", "cat", "string", "school", "chair", "smile", "three",
    "brown", "fox", "jumps", "over", "lazy", "river", "tree", "flower", "bread", "cheese",
    "glove", "plant", "train", "stone", "black", "white", "small", "big", "red", "window",
    "garden", "music", "summer", "winter", "friend", "house", "night", "light", "street",
    "clock", "snow", "rain", "fish", "bird", "milk", "spring", "thank", "shop", "sweet",
    "crow", "desk", "play", "sing", "eat", "the", "and", "sun", "moon", "dance", "cloud",
)  # fmt: skip
"""Lowercase words whose Pig Latin is unambiguous under the stated rule: each has a vowel
(a, e, i, o, u), none starts with "qu" or has a "y" before its first vowel."""

KEYWORDS: tuple[str, ...] = (
    "dog", "frisbee", "park", "river", "boat", "lantern", "garden", "kite", "bicycle",
    "mountain", "coffee", "window", "letter", "train", "umbrella", "candle", "forest", "piano",
    "market", "bread", "bridge", "storm", "camera", "island", "ladder", "blanket", "orange",
    "teacher", "clock", "violin", "beach", "castle", "cookie", "rocket", "mirror", "tent",
    "pillow", "snow", "festival", "backpack", "owl", "library", "ticket", "tomato", "whistle",
    "balloon", "harbor", "jacket", "notebook", "fox", "dance", "cook", "jump", "sing", "paint",
)  # fmt: skip
"""Concrete nouns and verbs for keyword-constrained writing (all distinct)."""

COPY_TEXTS: tuple[str, ...] = (
    "The blue kettle sings at noon.", "Meet me by the old oak tree.",
    "Pack an umbrella, just in case.", "Grandma's garden smells of mint.",
    "The train leaves from platform nine.", "Please close the window quietly.",
    "Our cat, Pepper, sleeps all day.", "A small boat drifted past the pier.",
    "Fresh bread is ready at seven.", "The museum opens on Tuesday.",
    "Lucy painted the fence green.", "Tom keeps his keys in a blue bowl.",
    "Snow fell softly over the village.", "Bring two pencils and a ruler.",
    "The library is quiet in the morning.", "My brother plays the drums loudly.",
    "Turn left at the bakery.", "The soup needs a pinch of salt.",
    "Dinner is at eight, don't be late!", "Sam found a shiny pebble on the beach.",
    "Owls hunt at night.", "The red balloon floated away.",
    "Water the plants on Sunday.", "Mia's bicycle has a silver bell.",
    "Clouds gathered over the hills.", "The bus was ten minutes late.",
    "Happy birthday, Grandpa Joe!", "Keep calm and carry on.",
    "The lighthouse blinks every evening.", "Her scarf is soft and warm.",
)  # fmt: skip
"""Short hand-written sentences, mixed case and punctuation, to copy (all distinct)."""

COPY_OPERATIONS: dict[str, str] = {
    "repeat": "Repeat exactly, and nothing else: {text}",
    "upper": "Write this in capital letters, and nothing else: {text}",
    "lower": "Write this in lowercase letters, and nothing else: {text}",
    "reverse": "Reverse the order of these words, and write nothing else: {text}",
}
"""The copy_exact requests by operation; ``{text}`` is what to copy, last in the prompt."""

LANGUAGES: dict[str, str] = {"fr": "French", "de": "German", "es": "Spanish"}
"""The target languages of the translation suite."""

_VOWELS = "aeiou"


class Translation(BaseModel):
    """One hand-written sentence with its references."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    en: str = Field(min_length=1)
    """The English source."""
    fr: str = Field(min_length=1)
    """The French reference."""
    de: str = Field(min_length=1)
    """The German reference."""
    es: str = Field(min_length=1)
    """The Spanish reference."""


class AcceptedAnswers(BaseModel):
    """One hand-written request and the answers that are right for it (metric one_of)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: str = Field(min_length=1)
    """The request, with its instruction to answer in one word or number."""
    answers: tuple[str, ...] = Field(min_length=1)
    """Every accepted answer."""


class _ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: str = Field(min_length=1)
    answers: str = Field(min_length=1)
    """The name of the accepted-answer list."""


class _ChatRequestFile(BaseModel):
    """``chat_requests.json``: named lists of accepted answers, and requests naming one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    answers: dict[str, tuple[str, ...]]
    requests: tuple[_ChatRequest, ...]

    @model_validator(mode="after")
    def _lists_exist(self) -> _ChatRequestFile:
        missing = sorted({r.answers for r in self.requests} - set(self.answers))
        if missing:
            raise ValueError(f"no answer list named {missing}")
        return self


def data_text(name: str) -> str:
    """The text of a data file shipped in ``hag_agent/data``."""
    return resources.files("hag_agent.data").joinpath(name).read_text("utf-8")


def _jsonl_rows(name: str) -> list[object]:
    return [json.loads(line) for line in data_text(name).splitlines() if line.strip()]


@functools.cache
def load_translations() -> tuple[Translation, ...]:
    """The hand-written translation set shipped as ``hag_agent/data/translations.jsonl``."""
    return tuple(Translation.model_validate(row) for row in _jsonl_rows("translations.jsonl"))


@functools.cache
def load_short_facts() -> tuple[AcceptedAnswers, ...]:
    """The hand-written questions shipped as ``hag_agent/data/short_facts.jsonl``."""
    return tuple(AcceptedAnswers.model_validate(row) for row in _jsonl_rows("short_facts.jsonl"))


@functools.cache
def load_chat_requests() -> tuple[AcceptedAnswers, ...]:
    """The hand-written requests shipped as ``hag_agent/data/chat_requests.json``."""
    table = _ChatRequestFile.model_validate_json(data_text("chat_requests.json"))
    return tuple(
        AcceptedAnswers(prompt=r.prompt, answers=table.answers[r.answers]) for r in table.requests
    )


def collect_distinct(
    suite: str,
    n: int,
    seed: int,
    draw: Callable[[random.Random], dict[str, object]],
) -> list[SuiteCase]:
    """Draw cases until ``n`` distinct prompts, ids ``suite-seed-index``."""
    rng = random.Random(seed)
    seen: set[str] = set()
    cases: list[SuiteCase] = []
    attempts = 0
    while len(cases) < n:
        attempts += 1
        if attempts > 100 * n + 1000:
            raise HAGInputError(f"suite {suite!r} cannot make {n} distinct cases")
        fields = draw(rng)
        prompt = str(fields["prompt"])
        if prompt in seen:
            continue
        seen.add(prompt)
        cases.append(SuiteCase.model_validate({"id": f"{suite}-{seed}-{len(cases):03d}", **fields}))
    return cases


def coinflip(n: int, seed: int = 0) -> list[SuiteCase]:
    """CoinFlip (Wei et al. 2022): 2 to 4 people each flip a heads-up coin or not; still heads up?

    The answer is "yes" exactly when the number of flips is even. Task reasoning, metric yes_no.
    """

    def draw(rng: random.Random) -> dict[str, object]:
        people = rng.sample(NAMES, rng.randint(2, 4))
        flips = [rng.random() < 0.5 for _ in people]
        steps = " ".join(
            f"{name} flips the coin." if flip else f"{name} does not flip the coin."
            for name, flip in zip(people, flips, strict=True)
        )
        prompt = f"A coin is heads up. {steps} Is the coin still heads up? Answer yes or no."
        answer = "yes" if sum(flips) % 2 == 0 else "no"
        return {"task": TaskKind.REASONING, "prompt": prompt, "answer": answer, "metric": "yes_no"}

    return collect_distinct("coinflip", n, seed, draw)


def last_letters(n: int, seed: int = 0) -> list[SuiteCase]:
    """Last-letter concatenation (Wei et al. 2022) of 2 to 4 names; reasoning, exact.

    The answer is the lowercase last letter of each name, in order, with no separator.
    """

    def draw(rng: random.Random) -> dict[str, object]:
        words = rng.sample(NAMES, rng.randint(2, 4))
        prompt = (
            f'Take the last letter of each word in "{" ".join(words)}" and concatenate them. '
            "Answer with the letters only."
        )
        answer = "".join(word[-1].lower() for word in words)
        return {"task": TaskKind.REASONING, "prompt": prompt, "answer": answer, "metric": "exact"}

    return collect_distinct("last_letters", n, seed, draw)


_ITEMS: tuple[str, ...] = ("apples", "marbles", "stickers", "pencils", "cookies", "stamps")


def arithmetic(n: int, seed: int = 0) -> list[SuiteCase]:
    """Word problems with one integer answer; math, metric number.

    Five templates: add, subtract, multiply, divide (exact by construction) and a two-step
    multiply-then-subtract.
    """

    def draw(rng: random.Random) -> dict[str, object]:
        first, second = rng.sample(NAMES, 2)
        item = rng.choice(_ITEMS)
        kind = rng.choice(("add", "subtract", "multiply", "divide", "two_step"))
        if kind == "add":
            a, b = rng.randint(2, 99), rng.randint(2, 99)
            prompt = (
                f"{first} has {a} {item}. {second} gives {first} {b} more {item}. "
                f"How many {item} does {first} have now?"
            )
            answer = a + b
        elif kind == "subtract":
            a = rng.randint(10, 99)
            b = rng.randint(1, a - 1)
            prompt = (
                f"{first} had {a} {item} and gave {b} of them to {second}. "
                f"How many {item} does {first} have left?"
            )
            answer = a - b
        elif kind == "multiply":
            a, b = rng.randint(2, 12), rng.randint(2, 12)
            prompt = f"A box holds {a} {item}. How many {item} are there in {b} boxes?"
            answer = a * b
        elif kind == "divide":
            each, friends = rng.randint(2, 12), rng.randint(2, 9)
            prompt = (
                f"{first} shares {each * friends} {item} equally among {friends} friends. "
                f"How many {item} does each friend get?"
            )
            answer = each
        else:
            packs, per_pack = rng.randint(2, 9), rng.randint(3, 12)
            given = rng.randint(1, packs * per_pack - 1)
            prompt = (
                f"{first} buys {packs} packs of {item} with {per_pack} {item} in each pack "
                f"and gives {given} {item} to {second}. How many {item} does {first} keep?"
            )
            answer = packs * per_pack - given
        prompt = f"{prompt} Give the final answer as a number."
        return {"task": TaskKind.MATH, "prompt": prompt, "answer": str(answer), "metric": "number"}

    return collect_distinct("arithmetic", n, seed, draw)


def to_pig_latin(word: str) -> str:
    """Pig Latin of one lowercase word by the suite's rule (see `pig_latin`)."""
    for index, char in enumerate(word):
        if char in _VOWELS:
            return word + "way" if index == 0 else word[index:] + word[:index] + "ay"
    raise HAGInputError(f"{word!r} has no vowel; its Pig Latin is ambiguous")


def pig_latin(n: int, seed: int = 0) -> list[SuiteCase]:
    """Pig Latin of a 2-4 word phrase, the paper's probe task; metric exact.

    The rule is stated in the prompt: a word starting with a vowel (a, e, i, o, u) gets "way"
    appended; otherwise the letters before its first vowel move to the end, followed by "ay"
    ("happy green apple" -> "appyhay eengray appleway"). Task kind reasoning, not translation:
    it is a deterministic rule applied letter by letter with one right answer, like last-letter
    concatenation, and is scored by exact match rather than a reference-based chrF (the rules
    classifier would still label a prompt saying "into Pig Latin" as translation, which is why
    the prompt says "Convert ... to Pig Latin").
    """

    def draw(rng: random.Random) -> dict[str, object]:
        words = rng.sample(PIG_LATIN_WORDS, rng.randint(2, 4))
        prompt = (
            "Convert the phrase to Pig Latin. Rule: a word that starts with a vowel "
            '(a, e, i, o, u) gets "way" added to its end; for any other word, move the letters '
            'before its first vowel to the end and add "ay". Answer with the converted phrase '
            f"only, in lowercase.\nPhrase: {' '.join(words)}"
        )
        answer = " ".join(to_pig_latin(word) for word in words)
        return {"task": TaskKind.REASONING, "prompt": prompt, "answer": answer, "metric": "exact"}

    return collect_distinct("pig_latin", n, seed, draw)


def translation(n: int, seed: int = 0) -> list[SuiteCase]:
    """Hand-written sentences into French, German or Spanish; translation, chrF.

    The first ``n`` of all ``3 * len(load_translations())`` (sentence, language) pairs, shuffled
    by the seed.
    """
    rows = load_translations()
    pairs = [(row, lang) for row in range(len(rows)) for lang in LANGUAGES]
    if n > len(pairs):
        raise HAGInputError(f"suite 'translation' has at most {len(pairs)} cases, asked for {n}")
    random.Random(seed).shuffle(pairs)
    return [
        SuiteCase(
            id=f"translation-{lang}-{row:03d}",
            task=TaskKind.TRANSLATION,
            prompt=f"Translate into {LANGUAGES[lang]}: {rows[row].en}",
            reference=getattr(rows[row], lang),
            metric="chrf",
        )
        for row, lang in pairs[:n]
    ]


def keywords(n: int, seed: int = 0) -> list[SuiteCase]:
    """One sentence that uses three given words; creative, metric coverage (plus diversity)."""

    def draw(rng: random.Random) -> dict[str, object]:
        words = rng.sample(KEYWORDS, 3)
        prompt = f"Write one sentence that uses all of these words: {', '.join(words)}."
        return {
            "task": TaskKind.CREATIVE,
            "prompt": prompt,
            "keywords": words,
            "metric": "coverage",
        }

    return collect_distinct("keywords", n, seed, draw)


def _accepted_answer_cases(
    suite: str, task: TaskKind, rows: tuple[AcceptedAnswers, ...], n: int, seed: int
) -> list[SuiteCase]:
    """The first ``n`` rows of a hand-written table, shuffled by the seed; metric one_of."""
    if n > len(rows):
        raise HAGInputError(f"suite {suite!r} has at most {len(rows)} cases, asked for {n}")
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    return [
        SuiteCase(
            id=f"{suite}-{row:03d}",
            task=task,
            prompt=rows[row].prompt,
            answers=list(rows[row].answers),
            metric="one_of",
        )
        for row in order[:n]
    ]


def short_facts(n: int, seed: int = 0) -> list[SuiteCase]:
    """One-word or one-number factual questions (capitals, colours, opposites, counts); one_of.

    Hand-written (`load_short_facts`); every prompt asks for one word or a number, and the
    accepted answers list the spellings that are right ("8" and "eight"). A reply that is just
    the answer scores 1, one whose first sentence names it ("The capital of Italy is Rome.")
    0.5 (`hag_agent.metrics.one_of_match`). The first ``n`` of the table, shuffled by the seed.
    Task factual.
    """
    return _accepted_answer_cases("short_facts", TaskKind.FACTUAL, load_short_facts(), n, seed)


def chat_reply(n: int, seed: int = 0) -> list[SuiteCase]:
    """Small conversational requests answered in one word from an open class; chat, one_of.

    "Suggest one fruit for breakfast. Answer in one word." is right for any fruit: the accepted
    answers are a generous hand-written list of the class (`load_chat_requests`), so the check
    is objective: 1 when the reply is one of them in one word (an article and a plural
    allowed), 0.5 when its first sentence names one ("I'd suggest a banana."), else 0
    (`hag_agent.metrics.one_of_match`). The first ``n`` of the table, shuffled by the seed.
    """
    return _accepted_answer_cases("chat_reply", TaskKind.CHAT, load_chat_requests(), n, seed)


def copy_text(operation: str, text: str) -> str:
    """What a copy_exact request asks for: the text repeated, in capitals, lowercase or reversed.

    Raises:
        HAGInputError: An operation not in `COPY_OPERATIONS`.
    """
    if operation == "repeat":
        return text
    if operation == "upper":
        return text.upper()
    if operation == "lower":
        return text.lower()
    if operation == "reverse":
        return " ".join(reversed(text.split()))
    raise HAGInputError(
        f"unknown copy operation {operation!r}; known: {', '.join(COPY_OPERATIONS)}"
    )


def copy_exact(n: int, seed: int = 0) -> list[SuiteCase]:
    """Copy a text exactly: repeat it, in capital or lowercase letters, or its words reversed.

    The texts are hand-written sentences (`COPY_TEXTS`); reversal takes 3-5 lowercase words of
    `KEYWORDS`. Metric verbatim: case and punctuation count. Task chat, what the rules
    classifier makes of such a request (no task pattern matches it).
    """

    def draw(rng: random.Random) -> dict[str, object]:
        operation = rng.choice(tuple(COPY_OPERATIONS))
        if operation == "reverse":
            text = " ".join(rng.sample(KEYWORDS, rng.randint(3, 5)))
        else:
            text = rng.choice(COPY_TEXTS)
        return {
            "task": TaskKind.CHAT,
            "prompt": COPY_OPERATIONS[operation].format(text=text),
            "answer": copy_text(operation, text),
            "metric": "verbatim",
        }

    return collect_distinct("copy_exact", n, seed, draw)
