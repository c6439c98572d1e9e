import pytest

from hag_agent import HAGContext, InvalidSettingsError, resolve_context
from hag_agent.tasks import TaskKind


def test_default() -> None:
    assert resolve_context().max_retries == 2


def test_environment_beats_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAG_MAX_RETRIES", "4")
    monkeypatch.setenv("HAG_TASK", "math")
    monkeypatch.setenv("HAG_PARAMS", '{"max_tokens": 64}')
    monkeypatch.setenv("HAG_BOUNDS__MAX_TOKENS", '{"low": 1, "high": 128}')
    context = resolve_context()
    assert context.max_retries == 4
    assert context.task is TaskKind.MATH
    assert context.params == {"max_tokens": 64}
    assert context.bounds.max_tokens.high == 128


def test_run_context_beats_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAG_MAX_RETRIES", "4")
    monkeypatch.setenv("HAG_PROPOSER", "prior")
    context = resolve_context(context=HAGContext(max_retries=1))
    assert context.max_retries == 1
    assert context.proposer == "prior"  # not set on the context: the environment's


def test_explicit_beats_run_context(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAG_MAX_RETRIES", "4")
    context = resolve_context({"max_retries": 0, "critique": None}, {"max_retries": 1})
    assert context.max_retries == 0
    assert context.critique is True  # None means not given


def test_pinned_params_merge_per_key() -> None:
    context = resolve_context({"params": {"top_k": 5}}, {"params": {"max_tokens": 64, "top_k": 9}})
    assert context.params == {"max_tokens": 64, "top_k": 5}


def test_unknown_setting_is_a_typed_error() -> None:
    with pytest.raises(InvalidSettingsError) as info:
        resolve_context({"max_retrys": 3})
    assert info.value.field == "max_retrys"


def test_bad_value_names_the_field_and_bound() -> None:
    with pytest.raises(InvalidSettingsError) as info:
        resolve_context({"max_retries": 50})
    assert info.value.field == "max_retries" and "10" in info.value.bound
    with pytest.raises(InvalidSettingsError, match="proposer"):
        resolve_context({"proposer": "magic"})


def test_pinned_param_out_of_bounds_is_rejected() -> None:
    with pytest.raises(InvalidSettingsError) as info:
        resolve_context({"params": {"temperature": 50}})
    assert info.value.field == "temperature" and info.value.bound == "[0, 2]"
    with pytest.raises(InvalidSettingsError, match="max_tokens"):
        resolve_context({"params": {"max_tokens": 1_000_000}})


def test_bad_environment_value_is_a_typed_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAG_ACCEPT_THRESHOLD", "high")
    with pytest.raises(InvalidSettingsError, match="HAG_ACCEPT_THRESHOLD"):
        resolve_context()


def test_a_case_key_never_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # One variable would give every prompt of the process the same random draw or oracle record.
    monkeypatch.setenv("HAG_CASE_ID", "m1")
    monkeypatch.setenv("HAG_MAX_RETRIES", "3")
    context = resolve_context()
    assert context.case_id is None and context.max_retries == 3
    assert resolve_context({"case_id": "c7"}).case_id == "c7"
