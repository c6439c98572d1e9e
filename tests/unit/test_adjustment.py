import pytest

from hag_agent import DecodingBounds, HyperParams, ParamSource
from hag_agent.adjustment import adjust
from hag_agent.critique import Direction
from hag_agent.hyperparameters import HYPERPARAM_KEYS
from hag_agent.tasks import TASK_PRIORS, TaskKind

BOUNDS = DecodingBounds()
START = HyperParams(
    temperature=0.8, top_p=0.9, top_k=40, min_p=0.0, repetition_penalty=1.1, max_tokens=256
)
SOURCES = dict.fromkeys(HYPERPARAM_KEYS, ParamSource.MODEL)


def step(
    direction: Direction,
    params: HyperParams = START,
    *,
    pinned: tuple[str, ...] = (),
    tried: list[HyperParams] | None = None,
    task: TaskKind = TaskKind.CHAT,
):  # type: ignore[no-untyped-def]
    return adjust(
        params,
        SOURCES,
        direction,
        task=task,
        bounds=BOUNDS,
        pinned=pinned,
        tried=tried if tried is not None else [params],
    )


def test_less_repetition() -> None:
    out = step(Direction.LESS_REPETITION)
    assert out.params is not None
    assert out.params.repetition_penalty == pytest.approx(1.25)
    assert out.params.temperature == pytest.approx(0.6)
    assert out.sources["repetition_penalty"] is ParamSource.RETRY
    assert out.sources["top_p"] is ParamSource.MODEL
    assert "repetition_penalty 1.1 -> 1.25" in out.reason


def test_longer_stays_within_the_cap() -> None:
    out = step(Direction.LONGER, START.model_copy(update={"max_tokens": 1500}))
    assert out.params is not None and out.params.max_tokens == BOUNDS.max_tokens.high


def test_more_focused_and_more_varied_and_deterministic() -> None:
    focused = step(Direction.MORE_FOCUSED).params
    assert (
        focused is not None and focused.temperature == 0.4 and focused.top_p == pytest.approx(0.8)
    )
    varied = step(Direction.MORE_VARIED).params
    assert varied is not None and varied.temperature == pytest.approx(1.1) and varied.top_p == 0.95
    exact = step(Direction.MORE_DETERMINISTIC, START.model_copy(update={"temperature": 0.1})).params
    assert exact is not None and exact.temperature == 0.0 and exact.top_k == 20


def test_none_uses_a_task_default() -> None:
    assert step(Direction.NONE, task=TaskKind.CREATIVE).direction is Direction.MORE_VARIED
    assert step(Direction.NONE, task=TaskKind.MATH).direction is Direction.MORE_FOCUSED


def test_pinned_keys_never_move() -> None:
    out = step(Direction.LESS_REPETITION, pinned=("repetition_penalty",))
    assert out.params is not None
    assert out.params.repetition_penalty == START.repetition_penalty
    assert out.params.temperature == pytest.approx(0.6)


def test_never_repeats_a_tried_configuration() -> None:
    first = step(Direction.LONGER).params
    assert first is not None
    again = step(Direction.LONGER, tried=[START, first])
    assert again.params is not None and again.params.max_tokens == 1024
    assert again.params.key() not in {START.key(), first.key()}


def test_at_the_bound_a_neighbouring_move_is_used() -> None:
    capped = START.model_copy(update={"max_tokens": 2048})
    out = step(Direction.LONGER, capped)
    assert out.direction is Direction.MORE_FOCUSED and "via more_focused" in out.reason


def test_exhausted_when_everything_is_pinned() -> None:
    out = step(Direction.MORE_VARIED, pinned=tuple(HYPERPARAM_KEYS))
    assert out.params is None and "already tried" in out.reason


def test_results_always_within_bounds() -> None:
    params = TASK_PRIORS[TaskKind.CREATIVE]
    tried = [params]
    for direction in list(Direction) * 3:
        out = step(direction, params, tried=tried)
        if out.params is None:
            continue
        _, clamps = BOUNDS.clamp(out.params.model_dump(), {}, out.params)
        assert clamps == []
        assert out.params.key() not in {p.key() for p in tried}
        tried.append(out.params)
        params = out.params
