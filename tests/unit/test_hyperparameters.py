import math

import pytest
from pydantic import ValidationError

from hag_agent import DecodingBounds, HyperParams, InvalidSettingsError, ParamSource
from hag_agent.hyperparameters import HYPERPARAM_KEYS, Range
from hag_agent.tasks import TASK_PRIORS, TaskKind

PRIOR = TASK_PRIORS[TaskKind.CHAT]
MODEL = dict.fromkeys(HYPERPARAM_KEYS, ParamSource.MODEL)


def test_proposal_json_is_compact_with_exactly_the_keys() -> None:
    text = PRIOR.to_proposal_json()
    assert " " not in text
    assert list(HyperParams.model_validate_json(text).model_dump()) == list(HYPERPARAM_KEYS)


def test_hyperparams_enforce_vllm_ranges() -> None:
    with pytest.raises(ValidationError):
        HyperParams(**{**PRIOR.model_dump(), "top_p": 0.0})
    with pytest.raises(ValidationError):
        HyperParams(**{**PRIOR.model_dump(), "temperature": math.nan})
    with pytest.raises(ValidationError):
        HyperParams(**{**PRIOR.model_dump(), "extra": 1})


def test_every_prior_is_inside_the_default_bounds() -> None:
    bounds = DecodingBounds()
    for prior in TASK_PRIORS.values():
        params, clamps = bounds.clamp(prior.model_dump(), {}, prior)
        assert clamps == []
        assert params == prior
    assert {k.value for k in TaskKind} >= {
        "math",
        "reasoning",
        "translation",
        "creative",
        "code",
        "factual",
        "chat",
    }


def test_clamp_records_every_change() -> None:
    values = {
        "temperature": 50,
        "top_p": 0,
        "top_k": 100000,
        "min_p": -1,
        "repetition_penalty": 0.5,
        "max_tokens": 1_000_000,
    }
    params, clamps = DecodingBounds().clamp(values, MODEL, PRIOR)
    assert params.temperature == 2.0
    assert params.top_p == 0.05
    assert params.top_k == 200
    assert params.min_p == 0.0
    assert params.repetition_penalty == 1.0
    assert params.max_tokens == 2048
    changed = {c.key: c for c in clamps}
    assert set(changed) == set(HYPERPARAM_KEYS)
    assert changed["temperature"].original == 50
    assert changed["temperature"].bound == "[0, 2]"
    assert changed["temperature"].source is ParamSource.MODEL


def test_top_k_zero_or_negative_means_off() -> None:
    params, clamps = DecodingBounds().clamp({"top_k": -3}, MODEL, PRIOR)
    assert params.top_k == 0
    assert [c.key for c in clamps] == ["top_k"]
    params, clamps = DecodingBounds().clamp({"top_k": 0}, MODEL, PRIOR)
    assert params.top_k == 0 and clamps == []


def test_non_numbers_fall_back_and_are_recorded() -> None:
    values = {"temperature": "hot", "top_p": "0.8", "top_k": None, "min_p": math.inf}
    params, clamps = DecodingBounds().clamp(values, MODEL, PRIOR)
    assert params.temperature == PRIOR.temperature
    assert params.top_p == 0.8  # numbers as strings are fine
    assert params.top_k == PRIOR.top_k
    assert params.min_p == PRIOR.min_p
    reasons = {c.key: c.bound for c in clamps}
    assert reasons["temperature"].startswith("not a finite number")
    assert reasons["min_p"].startswith("not a finite number")
    assert "top_p" not in reasons


def test_integer_keys_are_rounded() -> None:
    params, clamps = DecodingBounds().clamp({"max_tokens": 99.6, "top_k": "7"}, MODEL, PRIOR)
    assert params.max_tokens == 100
    assert params.top_k == 7
    assert [c.key for c in clamps] == ["max_tokens"]


def test_check_rejects_pinned_values_naming_field_and_bound() -> None:
    bounds = DecodingBounds()
    assert bounds.check({"temperature": 0.5, "max_tokens": "64"}) == {
        "temperature": 0.5,
        "max_tokens": 64,
    }
    with pytest.raises(InvalidSettingsError) as info:
        bounds.check({"temperature": 3})
    assert info.value.field == "temperature"
    assert info.value.bound == "[0, 2]"
    assert "temperature" in str(info.value) and "[0, 2]" in str(info.value)
    with pytest.raises(InvalidSettingsError, match="max_tokens"):
        bounds.check({"max_tokens": 1.5})
    with pytest.raises(InvalidSettingsError, match="unknown"):
        bounds.check({"seed": 3})
    with pytest.raises(InvalidSettingsError, match="top_k"):
        bounds.check({"top_k": 500})


def test_policy_cannot_exceed_hard_limits() -> None:
    with pytest.raises(ValidationError):
        DecodingBounds(temperature=Range(low=0, high=5))
    with pytest.raises(ValidationError):
        Range(low=2, high=1)
    narrow = DecodingBounds(max_tokens=Range(low=1, high=64))
    params, clamps = narrow.clamp({"max_tokens": 512}, MODEL, PRIOR)
    assert params.max_tokens == 64 and clamps[0].bound == "[1, 64]"


def test_key_ignores_float_noise() -> None:
    a = PRIOR.model_copy(update={"temperature": 0.7})
    b = PRIOR.model_copy(update={"temperature": 0.1 * 7})
    assert a.key() == b.key()
