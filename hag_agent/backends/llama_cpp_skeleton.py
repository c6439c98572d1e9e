"""Greedy decoding of a compact object of numbers, key by key, on a loaded llama.cpp model.

The proposal is a flat JSON object whose keys are known in advance, so the model needs to write
only the numbers. This decoder writes the keys (and any values the caller gives) itself and lets
the model choose the digits: at each step it takes the most likely token among those a number
may continue with (digits, one decimal point, or a token that ends the value as JSON would).
That is greedy decoding under a number grammar, without llama.cpp's grammar sampler and a
completion call per key, which cost more than the forward passes themselves on a small model.

What makes it cheap (measured with `benchmarks/embedded_overhead.py`):

- Drafting from the prompt (prompt-lookup decoding): the proposal prompt shows an example object,
  so its values are drafted, the whole drafted object is evaluated in one batch, and the
  model's greedy choices are checked against it; the first choice that differs drops the rest
  of the draft. The text is the one token-by-token greedy decoding gives; a model that agrees
  with the example decides the whole object in one pass. After a shared prefix, the last object
  decoded there drafts first (a tuned proposer that proposes alike for a task kind, unlike its
  example).
- Given values (the ones a tuned proposer's training held fixed) are written, never decoded.
- A prompt's shared prefix (the proposal's instructions and example for one task kind) is
  evaluated once, in one batch, and its state kept (`PrefixStates`); a later prompt that starts
  the same way restores it and evaluates only its own request. Every prompt is evaluated in the
  same pieces whether the state was kept or made, so the numbers, and a seed's output, do not
  depend on which calls came before.

Numbers are capped where no decoding value needs more (2 digits before a point, 2 decimals, 4
digits for an integer, no leading zeros, no sign); a value ends at its cap, and is written as
compact JSON writes it (``0.10`` as ``0.1``) before the next key, the form a tuned proposer was
trained on. The text is tokenized whole at each step and only tokens past the cached prefix are
evaluated, so the cache holds what tokenizing the final text gives.
"""

from __future__ import annotations

import ctypes
import json
import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from llama_cpp import Llama

NumberKind = Literal["int", "float"]

MAX_INTEGER_DIGITS = {"int": 4, "float": 2}
"""Digits before a point (or in an integer) at most. Every value the default bounds allow fits
(max_tokens up to 2048, top_k up to 200, floats under 10); a longer one would be clamped anyway.
The vLLM regex (`openai_compatible.object_regex`) bounds numbers on its own terms."""
MAX_DECIMALS = 2
"""Decimals at most, as in every proposal the training data holds (``0.95``, ``1.05``)."""


@dataclass(frozen=True)
class NumberTokens:
    """The tokens a number may be written with in one model's vocabulary."""

    digits: dict[int, str]
    """Tokens made only of digits (one or several), with their text."""
    point: int
    """The decimal point."""
    ends: frozenset[int]
    """Tokens that end a value where JSON would: any starting with ``,`` or ``}``. Merged ones
    count (``,"`` is one token in many vocabularies, and the one a model trained on compact JSON
    prefers after a value: without it the model sees no way to end and writes zeros)."""

    @classmethod
    def of(cls, llama: Llama) -> NumberTokens:
        """Scan the vocabulary once (about 0.1 s for 50k tokens).

        Raises:
            ValueError: When the vocabulary lacks digits, a single ``.`` or an ending token.
        """
        digits: dict[int, str] = {}
        ends: set[int] = set()
        for token in range(llama.n_vocab()):
            text = llama.detokenize([token]).decode("utf-8", errors="replace")
            if text.isascii() and text.isdigit():
                digits[token] = text
            elif text[:1] in (",", "}") and not any(char.isdigit() for char in text):
                ends.add(token)
        if not digits or not ends:
            raise ValueError("the vocabulary has no digit tokens or none that ends a value")
        return cls(digits=digits, point=_single_token(llama, "."), ends=frozenset(ends))


def _single_token(llama: Llama, text: str) -> int:
    tokens = llama.tokenize(text.encode(), add_bos=False, special=False)
    if len(tokens) != 1:
        raise ValueError(f"{text!r} is not a single token in this vocabulary")
    return int(tokens[0])


@dataclass
class _Number:
    """The state of one number being written."""

    kind: NumberKind
    text: str = ""

    @property
    def integer_digits(self) -> int:
        return len(self.text.split(".")[0])

    @property
    def decimals(self) -> int:
        return len(self.text.split(".")[1]) if "." in self.text else 0

    def allowed(self, tokens: NumberTokens) -> tuple[list[int], bool]:
        """Token ids that may come next, and whether the value may end here."""
        if self.text.endswith("."):
            room = MAX_DECIMALS
            return [t for t, d in tokens.digits.items() if len(d) <= room], False
        if "." in self.text:
            room = MAX_DECIMALS - self.decimals
            return [t for t, d in tokens.digits.items() if len(d) <= room], True
        if self.text == "0":  # no leading zeros: 0 ends or takes a point
            return ([tokens.point] if self.kind == "float" else []), True
        room = MAX_INTEGER_DIGITS[self.kind] - self.integer_digits
        allowed = [t for t, d in tokens.digits.items() if len(d) <= room]
        if self.text and self.kind == "float":
            allowed.append(tokens.point)
        return allowed, bool(self.text)


@dataclass
class _KeptPrefix:
    """One shared prefix's kept state, and the last object decoded after it."""

    state: Any
    """llama.cpp's per-sequence state right after the prefix."""
    last_values: dict[str, str] = field(default_factory=dict)
    """The values last decoded after this prefix: the first draft for the next decoding."""


class PrefixStates:
    """The model's KV state after each of the last few shared prefixes, by their tokens.

    Kept with llama.cpp's per-sequence state calls: a copy of the prefix's own cache cells
    (about 23 kB a token on SmolLM2-135M), not the whole context. Each kept prefix also holds the
    values last decoded after it, so both are dropped together.
    """

    def __init__(self, capacity: int = 16) -> None:
        """Keep at most ``capacity`` states, the least recently used dropped first."""
        self.capacity = capacity
        self._kept: OrderedDict[tuple[int, ...], _KeptPrefix] = OrderedDict()

    def start(self, llama: Llama, prefix: Sequence[int]) -> bool:
        """Bring ``llama``'s cache to exactly ``prefix``: restored if kept, else evaluated.

        The prefix is evaluated from an empty cache in one piece either way, so what follows it
        computes the same numbers on a first call and on a later one. Returns whether it was
        evaluated.
        """
        import llama_cpp

        key = tuple(prefix)
        kept = self._kept.get(key)
        llama._ctx.kv_cache_seq_rm(-1, 0, -1)
        llama.n_tokens = 0
        if kept is not None and llama_cpp.llama_state_seq_set_data(
            llama.ctx, kept.state, len(kept.state), 0
        ):
            llama.input_ids[: len(key)] = key
            llama.n_tokens = len(key)
            self._kept.move_to_end(key)
            return False
        llama._ctx.kv_cache_seq_rm(-1, 0, -1)  # a failed restore may leave cells behind
        llama.eval(list(prefix))  # not kept (or not restorable): evaluated, then kept
        size = llama_cpp.llama_state_seq_get_size(llama.ctx, 0)
        state = (ctypes.c_uint8 * size)()
        llama_cpp.llama_state_seq_get_data(llama.ctx, state, size, 0)
        self._kept[key] = _KeptPrefix(state, kept.last_values if kept else {})
        self._kept.move_to_end(key)
        if len(self._kept) > self.capacity:
            self._kept.popitem(last=False)
        return True

    def last_values(self, prefix: Sequence[int]) -> dict[str, str]:
        """The values last decoded after ``prefix`` (empty when none or not kept)."""
        kept = self._kept.get(tuple(prefix))
        return kept.last_values if kept else {}

    def remember(self, prefix: Sequence[int], values: Mapping[str, str]) -> None:
        """Keep ``values`` as the last decoded after ``prefix``, when its state is kept."""
        kept = self._kept.get(tuple(prefix))
        if kept is not None:
            kept.last_values = dict(values)

    def __len__(self) -> int:
        return len(self._kept)


class SkeletonDecoder:
    """Greedy decoding of one compact object on one llama.cpp model; the caller holds its lock.

    Drafts from the prompt (prompt-lookup decoding): where the prompt shows a value for a key
    (``"top_p":0.9`` in the proposal prompt's example), the whole drafted object is evaluated in
    one batch and each of the model's greedy choices is checked against it; the first choice that
    differs drops the rest of the draft and decoding goes on one token per pass. The text is the
    one sequential greedy decoding gives; a model that agrees with its example costs one pass.
    """

    def __init__(self, llama: Llama, tokens: NumberTokens) -> None:
        """Decode with ``llama``, whose number tokens are ``tokens``."""
        import numpy as np

        self.llama = llama
        self.tokens = tokens
        self.passes = 0
        """Sequential evaluations made by the last `decode` (a batch counts once)."""
        # The logits of the tokens a number may use, for each cached position they are known of.
        self._columns = np.asarray(
            sorted({*tokens.digits, tokens.point, *tokens.ends}), dtype=np.int64
        )
        self._column_of = {int(token): i for i, token in enumerate(self._columns)}
        self._rows: dict[int, Any] = {}
        self._current: Any = None
        self.prefixes = PrefixStates()
        """The states of the shared prefixes seen (`decode`'s ``prefix``)."""
        self._remembered: Mapping[str, str] = {}

    def decode(
        self,
        prompt: str,
        keys: Mapping[str, NumberKind],
        given: Mapping[str, float],
        prefix: str = "",
    ) -> str:
        """The compact JSON object of ``keys`` after ``prompt``; ``given`` values are written.

        ``prefix``: the start of ``prompt`` that other prompts share, evaluated once and kept.

        Raises:
            ValueError: When the prompt does not fit the context (llama.cpp's own error).
        """
        self.passes = 0
        self._rows = {}
        prefix_tokens = self._start(prompt, prefix) if prefix else ()
        # A model that proposes alike for one task kind is drafted from its last proposal there.
        self._remembered = self.prefixes.last_values(prefix_tokens)
        text, names, values = "{", list(keys), {}
        for i, key in enumerate(names):
            text += f"{json.dumps(key)}:"
            if key in given:  # evaluated with the next key to decode; never when none follows
                value = _written(given[key], keys[key])
            else:
                self._draft(prompt, text, {name: keys[name] for name in names[i:]}, given)
                value = values[key] = _canonical(self._number(prompt + text, keys[key]), keys[key])
            text += value + ("," if i < len(names) - 1 else "}")
        self.prefixes.remember(prefix_tokens, values)
        return text

    def _start(self, prompt: str, prefix: str) -> tuple[int, ...]:
        """Begin from the kept state of ``prefix`` (its tokens that ``prompt`` tokenizes alike).

        Returns the prefix tokens started from, or none when the prompt could not use them.
        """
        tokens = self._tokenized(prompt)
        shared = _common_prefix(self._tokenized(prefix), tokens)
        # At least one token of the prompt's own is left to evaluate, for its logits.
        shared = min(shared, len(tokens) - 1)
        if shared <= 1 or len(tokens) > self.llama.n_ctx():
            return ()
        self.passes += self.prefixes.start(self.llama, tokens[:shared])
        return tuple(tokens[:shared])

    def _number(self, context: str, kind: NumberKind) -> str:
        """Write one number after ``context`` (already evaluated), greedily."""
        number = _Number(kind)
        while True:
            allowed, may_end = number.allowed(self.tokens)
            if may_end:
                allowed = [*allowed, *self.tokens.ends]
            if not allowed:
                return number.text or "0"
            token = self._most_likely(allowed)
            if token in self.tokens.ends:
                return number.text
            number.text += "." if token == self.tokens.point else self.tokens.digits[token]
            self._evaluate(context + number.text)

    def _most_likely(self, allowed: Sequence[int]) -> int:
        return max(allowed, key=lambda token: float(self._current[self._column_of[token]]))

    def _draft(
        self, prompt: str, text: str, keys: Mapping[str, NumberKind], given: Mapping[str, float]
    ) -> None:
        """Evaluate up to ``text``, the object so far, and the rest the prompt suggests after it.

        The first of ``keys`` is the one to decode next. Its position's logits become the
        current ones; every drafted position's are kept. Nothing is evaluated when the position
        is known already (the model agreed with the draft so far).
        """
        context = prompt + text
        llama = self.llama
        head = self._tokenized(context)
        if self._recalled(head):
            return
        draft = _drafted(prompt, keys, given, self._remembered)
        tokens = self._tokenized(context + draft)
        # The last tokens of the context go with the draft, so a merge at the seam splits nothing.
        seam = min(_common_prefix(head, tokens), len(head)) - 1
        if not draft or len(tokens) > llama.n_ctx() or len(tokens) - seam > llama.n_batch:
            self._evaluate_tokens(head)  # one token at a time from here
            return
        self._evaluate_tokens(tokens[:seam])
        self._evaluate_all(tokens[seam:])
        self._current = self._rows[len(head) - 1]

    def _evaluate_all(self, tokens: Sequence[int]) -> None:
        """Append ``tokens`` in one batch and keep the number tokens' logits of every position.

        llama-cpp-python's `Llama.eval` keeps no logits but the last (its sampler needs no more),
        so the batch is decoded through its context directly, as `Llama.eval` itself does.
        """
        import llama_cpp
        import numpy as np

        llama = self.llama
        past = llama.n_tokens
        llama._ctx.kv_cache_seq_rm(-1, past, -1)
        llama._batch.set_batch(batch=tokens, n_past=past, logits_all=True)
        llama._ctx.decode(llama._batch)
        llama.input_ids[past : past + len(tokens)] = tokens
        llama.n_tokens = past + len(tokens)
        logits = np.ctypeslib.as_array(
            llama_cpp.llama_get_logits(llama.ctx), shape=(len(tokens), llama.n_vocab())
        )
        kept = logits[:, self._columns].copy()
        self._rows = {past + i: kept[i] for i in range(len(tokens))}
        self.passes += 1

    def _evaluate(self, text: str) -> None:
        """Bring the cache to ``text``; its last position's logits become the current ones."""
        tokens = self._tokenized(text)
        if not self._recalled(tokens):
            self._evaluate_tokens(tokens)

    def _tokenized(self, text: str) -> list[int]:
        # As llama-cpp-python's completion call tokenizes, so a later call shares the cache.
        return list(self.llama.tokenize(text.encode(), add_bos=True, special=True))

    def _recalled(self, tokens: Sequence[int]) -> bool:
        """Whether the cache holds ``tokens`` and their last logits (made current), from a draft."""
        llama = self.llama
        cached = _common_prefix(llama.input_ids[: llama.n_tokens].tolist(), tokens)
        if cached == len(tokens) and cached - 1 in self._rows:
            self._current = self._rows[cached - 1]
            return True
        return False

    def _evaluate_tokens(self, tokens: Sequence[int]) -> None:
        """Evaluate the tokens past the cached prefix (the last one again when all are cached)."""
        import llama_cpp
        import numpy as np

        llama = self.llama
        if len(tokens) > llama.n_ctx():
            raise ValueError(
                f"Requested tokens ({len(tokens)}) exceed context window of {llama.n_ctx()}"
            )
        cached = _common_prefix(llama.input_ids[: llama.n_tokens].tolist(), tokens)
        llama.n_tokens = min(cached, len(tokens) - 1)
        self._rows = {at: row for at, row in self._rows.items() if at < llama.n_tokens}
        llama.eval(tokens[llama.n_tokens :])
        pointer = llama_cpp.llama_get_logits_ith(llama.ctx, -1)
        logits = np.ctypeslib.as_array(pointer, shape=(llama.n_vocab(),))
        self._current = logits[self._columns].copy()
        self._rows[len(tokens) - 1] = self._current
        self.passes += 1


def _common_prefix(cached: Sequence[int], tokens: Sequence[int]) -> int:
    count = 0
    for old, new in zip(cached, tokens, strict=False):
        if old != new:
            break
        count += 1
    return count


def _drafted(
    prompt: str,
    keys: Mapping[str, NumberKind],
    given: Mapping[str, float],
    remembered: Mapping[str, str] | None = None,
) -> str:
    """The rest of the object as the prompt suggests it, from the first key's value on.

    A value is the ``remembered`` one, else the last one the prompt shows for its key
    (``"top_p":0.9``); the draft stops at the first key with neither, and after the last key
    to decode (given values after it need no logits).
    """
    draft, names = "", list(keys)
    last = max(i for i, key in enumerate(names) if key not in given)
    for i, key in enumerate(names[: last + 1]):
        if key in given:
            value = _written(given[key], keys[key])
        elif remembered and key in remembered:
            value = remembered[key]
        else:
            found = re.findall(rf"{re.escape(json.dumps(key))}:\s*(\d+(?:\.\d+)?)", prompt)
            if not found:
                break
            value = _canonical(found[-1], keys[key])
        draft += value if i == 0 else f"{json.dumps(key)}:{value}"
        draft += "," if i < len(names) - 1 else "}"
    return draft


def _canonical(text: str, kind: NumberKind) -> str:
    """A decoded number as compact JSON writes it (``0.10`` is ``0.1``).

    The next keys then read the object in the form a tuned proposer was trained on.
    """
    return _written(float(text), kind) if text else "0"


def _written(value: Any, kind: NumberKind) -> str:
    """A given value as the training targets write it (``48``, ``0.0``)."""
    return str(int(value)) if kind == "int" else json.dumps(float(value))


__all__ = ["MAX_DECIMALS", "NumberTokens", "SkeletonDecoder"]
