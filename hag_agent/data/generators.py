"""Seeded generators of the built-in suites: one function per suite, ``(n, seed) -> cases``.

Each generator draws from ``random.Random(seed)`` only, so the same ``n`` and ``seed`` give the
same cases on any machine, and a larger ``n`` extends a smaller one (same seed, same first
cases). Every answer is computed from the very values written into the prompt; the tests check
each answer again, independently, from the prompt text. Prompts within one suite are distinct.
Ids are ``"{suite}-{seed}-{index:03d}"`` (translation: the row and the language,
``"translation-fr-007"``).
"""

from __future__ import annotations

import functools
import json
import random
from collections.abc import Callable
from importlib import resources

from pydantic import BaseModel, ConfigDict, Field

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


@functools.cache
def load_translations() -> tuple[Translation, ...]:
    """The hand-written translation set shipped as ``hag_agent/data/translations.jsonl``."""
    text = resources.files("hag_agent.data").joinpath("translations.jsonl").read_text("utf-8")
    return tuple(
        Translation.model_validate(json.loads(line)) for line in text.splitlines() if line.strip()
    )


def _collect(
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

    return _collect("coinflip", n, seed, draw)


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

    return _collect("last_letters", n, seed, draw)


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

    return _collect("arithmetic", n, seed, draw)


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

    return _collect("pig_latin", n, seed, draw)


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

    return _collect("keywords", n, seed, draw)
