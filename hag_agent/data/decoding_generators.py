"""Seeded generators of the suites where the decoding settings decide the score.

A small model can list, repeat and continue text; how well it does depends on how it samples.
Three of the suites share one task kind, chat; repeat_exact and talk_at_length want opposite
settings from it, and the prompt says which:

- distinct_list: "List 6 different insects, one per line": greedy decoding repeats itself, so
  it wants sampling and a repetition penalty (metric distinct_items);
- repeat_exact: repeat a sentence word for word: any sampling can only hurt (metric verbatim).
  It is the one exact rewrite SmolLM2-135M does under greedy decoding (replacing or dropping a
  word, capitals and hyphens it does not); the held-out copy_exact suite asks the same of
  hand-written sentences, so a proposer tuned on repeat_exact has seen that kind of request;
- talk_at_length (chat): talk about an everyday topic in about 40, 60 or 80 words: a loop or
  a cut answer scores low, so it wants sampling and a repetition penalty, the settings that
  break repeat_exact (vLLM's penalty counts the prompt's tokens too, so it pushes a copy off
  the sentence) (metric loop_free_length);
- continuation (creative): continue a story opening in about 40, 60 or 80 words: a loop or a
  cut answer scores low, so it wants enough max_tokens and some sampling (metric
  loop_free_length).

The same rules as `hag_agent.data.generators` hold: ``random.Random(seed)`` only, a larger ``n``
extends a smaller one, prompts distinct within a suite, ids ``"{suite}-{seed}-{index:03d}"``, and
every answer computed from what the prompt says.
"""

from __future__ import annotations

import functools
import random

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from hag_agent.data.cases import SuiteCase
from hag_agent.data.generators import NAMES, collect_distinct, data_text
from hag_agent.tasks import TaskKind

LIST_SIZES = range(4, 9)
"""How many items a distinct_list case asks for."""

LIST_PROMPTS: tuple[str, ...] = (
    "List {count} different {plural}, one per line, and nothing else.",
    "Name {count} different {plural}. Write one per line and nothing else.",
)
"""The distinct_list requests; ``{count}`` and ``{plural}`` are filled in."""

SENTENCE_PARTS: dict[str, tuple[str, ...]] = {
    "verb": ("painted", "cleaned", "fixed", "moved", "sold", "bought", "found", "carried"),
    "adjective": ("old", "small", "red", "heavy", "wooden", "broken", "new", "green", "tall"),
    "noun": ("fence", "table", "boat", "door", "box", "bicycle", "chair", "window", "wagon"),
    "place": (
        "near the river", "in the garden", "behind the school", "at the market",
        "by the station", "on the hill", "in the village", "after lunch", "before dinner",
    ),
}  # fmt: skip
"""Parts of the repeat_exact sentences: ``"{name} {verb} the {adjective} {noun} {place}."``."""

REPEAT_PROMPTS: tuple[str, ...] = (
    "Repeat this sentence exactly, and write nothing else: {text}",
    "Write this sentence again exactly as it is, and nothing else: {text}",
    "Say this sentence again word for word, and nothing else: {text}",
)
"""The repeat_exact requests; the sentence comes last."""

CONTINUATION_LENGTHS = (40, 60, 80)
"""About how many words a continuation case asks for."""

OPENINGS: tuple[str, ...] = (
    "{name} opened the old {thing} and found a letter addressed to nobody.",
    "The {thing} on {name}'s desk had started to hum every night at midnight.",
    "When the train stopped in the middle of the forest, {name} picked up the {thing} and "
    "stepped outside.",
    "{name} had never seen a {thing} glow like that before.",
    "Nobody in the village believed {name} when the {thing} began to talk.",
    "On the first morning of winter, {name} found a {thing} waiting on the doorstep.",
)
"""Story openings for continuation; ``{name}`` and ``{thing}`` are filled in."""

TALK_PROMPTS: tuple[str, ...] = (
    "Tell me about {topic} in about {count} words.",
    "In about {count} words, talk to me about {topic}.",
    "Describe {topic} in about {count} words.",
)
"""The talk_at_length requests; no pattern of the rules classifier's other kinds matches them."""

TALK_TOPICS: tuple[str, ...] = (
    "a day at the beach", "a rainy afternoon at home", "a busy train station",
    "your favourite kind of weather", "cooking dinner for friends", "a walk in the forest",
    "a visit to the zoo", "learning to ride a bicycle", "a small town market",
    "the first day of spring", "a long car journey", "a quiet library", "a birthday party",
    "moving to a new house", "a snowy morning", "a football match", "a trip to the mountains",
    "working in a garden", "a night at the cinema", "a picnic in the park",
)  # fmt: skip
"""Everyday topics of talk_at_length."""

THINGS: tuple[str, ...] = (
    "box", "lantern", "map", "clock", "radio", "suitcase", "mirror", "key", "book", "compass",
)  # fmt: skip
"""Objects in the story openings."""


class ListCategory(BaseModel):
    """One category of ``list_categories.json``: its plural and every accepted item."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    plural: str = Field(min_length=1)
    """The category in the plural, as the prompt names it ("pieces of furniture")."""
    items: tuple[str, ...] = Field(min_length=12)
    """Accepted items, lowercase; spellings of one item joined by ``|`` ("usa|united states")."""


@functools.cache
def load_list_categories() -> dict[str, ListCategory]:
    """The hand-written categories shipped as ``hag_agent/data/list_categories.json``."""
    # The adapter is built here, once (the result is cached), not when the module is imported.
    return TypeAdapter(dict[str, ListCategory]).validate_json(data_text("list_categories.json"))


def distinct_list(n: int, seed: int = 0) -> list[SuiteCase]:
    """List 4 to 8 different items of a category, one per line; chat, distinct_items."""
    categories = load_list_categories()
    names = sorted(categories)

    def draw(rng: random.Random) -> dict[str, object]:
        category = categories[rng.choice(names)]
        count = rng.choice(LIST_SIZES)
        template = rng.choice(LIST_PROMPTS)
        return {
            "task": TaskKind.CHAT,
            "prompt": template.format(count=count, plural=category.plural),
            "answers": list(category.items),
            "count": count,
            "metric": "distinct_items",
        }

    return collect_distinct("distinct_list", n, seed, draw)


def repeat_exact(n: int, seed: int = 0) -> list[SuiteCase]:
    """Repeat a sentence word for word; chat, metric verbatim (case and punctuation count)."""

    def draw(rng: random.Random) -> dict[str, object]:
        parts = {key: rng.choice(values) for key, values in SENTENCE_PARTS.items()}
        text = (
            f"{rng.choice(NAMES)} {parts['verb']} the {parts['adjective']} {parts['noun']} "
            f"{parts['place']}."
        )
        return {
            "task": TaskKind.CHAT,
            "prompt": rng.choice(REPEAT_PROMPTS).format(text=text),
            "answer": text,
            "metric": "verbatim",
        }

    return collect_distinct("repeat_exact", n, seed, draw)


def talk_at_length(n: int, seed: int = 0) -> list[SuiteCase]:
    """Talk about an everyday topic in about 40, 60 or 80 words; chat, loop_free_length."""

    def draw(rng: random.Random) -> dict[str, object]:
        count = rng.choice(CONTINUATION_LENGTHS)
        prompt = rng.choice(TALK_PROMPTS).format(topic=rng.choice(TALK_TOPICS), count=count)
        return {
            "task": TaskKind.CHAT,
            "prompt": prompt,
            "count": count,
            "metric": "loop_free_length",
        }

    return collect_distinct("talk_at_length", n, seed, draw)


def continuation(n: int, seed: int = 0) -> list[SuiteCase]:
    """Continue a story opening in about 40, 60 or 80 words; creative, loop_free_length."""

    def draw(rng: random.Random) -> dict[str, object]:
        opening = rng.choice(OPENINGS).format(name=rng.choice(NAMES), thing=rng.choice(THINGS))
        count = rng.choice(CONTINUATION_LENGTHS)
        return {
            "task": TaskKind.CREATIVE,
            "prompt": f"Continue this story in about {count} words: {opening}",
            "count": count,
            "metric": "loop_free_length",
        }

    return collect_distinct("continuation", n, seed, draw)


__all__ = [
    "CONTINUATION_LENGTHS",
    "LIST_PROMPTS",
    "LIST_SIZES",
    "OPENINGS",
    "REPEAT_PROMPTS",
    "SENTENCE_PARTS",
    "TALK_PROMPTS",
    "TALK_TOPICS",
    "THINGS",
    "ListCategory",
    "continuation",
    "distinct_list",
    "load_list_categories",
    "repeat_exact",
    "talk_at_length",
]
