"""Hypothesis strategies for what a model may answer instead of a decision.

Random text, JSON of the wrong types, huge numbers, NaN and Infinity, deep nesting, unicode,
truncated JSON, each bare or wrapped in prose or a code fence; objects that carry the expected
keys with junk values, so the code past the JSON parser is reached too.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

_NUMBERS = st.one_of(
    st.integers(),
    st.integers(min_value=10**300, max_value=10**400),  # past float's range
    st.integers(max_value=-(10**300), min_value=-(10**400)),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 1e308, -1e308, 5e-324, 2**63, -(2**63)]),
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    _NUMBERS,
    st.text(max_size=20),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "0x10", " 0.7 ", "hot", "∞"]),
)
JSON_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def objects_with(keys: list[str], extra_values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Objects holding some of ``keys`` (any case, padded) with junk or plausible values."""
    key = st.sampled_from(keys).flatmap(
        lambda k: st.sampled_from([k, k.upper(), f" {k} ", k.title()])
    )
    value = st.one_of(JSON_VALUES, extra_values)
    return st.dictionaries(st.one_of(key, st.text(max_size=8)), value, max_size=len(keys) + 2)


def _dump(value: Any) -> str:
    # allow_nan writes the NaN/Infinity literals Python's own json accepts and strict JSON does not
    return json.dumps(value, allow_nan=True, ensure_ascii=False)


def _nested(depth: int, opener: str) -> str:
    return opener * depth


def model_texts(objects: st.SearchStrategy[Any]) -> st.SearchStrategy[str]:
    """Text a model might return: junk, the objects as JSON, cut short, wrapped, or deep."""
    as_json = objects.map(_dump)
    truncated = st.tuples(as_json, st.integers(min_value=0, max_value=200)).map(
        lambda pair: pair[0][: pair[1]]
    )
    deep = st.tuples(
        st.integers(min_value=100, max_value=1_500), st.sampled_from(["[", "{", '{"a":', "[{"])
    ).map(lambda pair: _nested(*pair))
    core = st.one_of(
        st.text(max_size=200),
        st.binary(max_size=64).map(lambda b: b.decode("utf-8", "replace")),
        JSON_VALUES.map(_dump),
        as_json,
        truncated,
        deep,
    )
    wrappers = st.sampled_from(
        ["{}", "Sure! Here it is: {} Hope that helps.", "```json\n{}\n```", "{}{}", "'{}'"]
    )
    return st.tuples(core, wrappers).map(lambda pair: pair[1].replace("{}", pair[0]))
