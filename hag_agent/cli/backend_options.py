"""Options shared by the commands that talk to a model.

The backend (run, chat, eval, search, serve), the graph's strategies, seed and learned head
(run, chat, serve), and the run's task, pins, retries and critique (run, serve).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, get_args

import click

from hag_agent.cli.option_kinds import F
from hag_agent.context import ClassifierName, CriticName


class ProposerChoice(click.ParamType):  # type: ignore[type-arg]  # generic from click 8.2 only
    """A proposer name, checked against the registry when given (plugins' names included)."""

    name = "proposer"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        """``value`` if it names a registered proposer; else a usage error listing them."""
        # Imported here: the registry loads the graph's modules, which --help does not need.
        from hag_agent.proposing import PROPOSERS

        name = str(value)
        if not PROPOSERS.knows(name):
            self.fail(PROPOSERS.unknown(name), param, ctx)
        return name


_OPTIONS = (
    click.option(
        "--backend",
        help="Backend name: embedded (default), vllm, llamacpp-server, openai, or a plugin's.",
    ),
    click.option(
        "--base-url",
        help="OpenAI-compatible server root, e.g. http://127.0.0.1:8000/v1 "
        "(implies --backend vllm).",
    ),
    click.option("--model", help="Served model name (endpoint backends)."),
    click.option(
        "--proposer-model",
        help="The proposal call's own model: a served name on an endpoint (e.g. a LoRA "
        "adapter); on the embedded backend a GGUF LoRA file, or builtin (the packaged one).",
    ),
    click.option(
        "--model-path",
        type=click.Path(dir_okay=False),
        help="A GGUF file for the embedded backend.",
    ),
)


_STRATEGY_OPTIONS = (
    click.option("--seed", type=int, help="Sampling seed."),
    click.option(
        "--classifier", type=click.Choice(get_args(ClassifierName)), help="Task classifier."
    ),
    click.option(
        "--proposer",
        type=ProposerChoice(),
        help="Who proposes the params (default: the backend's, the task prior unless a "
        "--proposer-model or --head is given): self, prior, fixed, learned, default, random, "
        'oracle (HAG_PROPOSER_OPTIONS=\'{"oracle": {"search_file": FILE}}\'), self-tuned, '
        'fitted-prior (HAG_PROPOSER_OPTIONS=\'{"fitted-prior": {"priors_file": FILE}}\'), min-p, '
        "or a plugin's.",
    ),
    click.option(
        "--critic",
        type=click.Choice(get_args(CriticName)),
        help="Critique by signals, or signals plus an LLM judge.",
    ),
    click.option(
        "--head",
        "head_path",
        type=click.Path(dir_okay=False),
        help="A learned head file (`hag-agent train head`; `builtin`: the packaged one) for "
        "--proposer learned (implied).",
    ),
)


_RUN_OPTIONS = (
    click.option(
        "--task",
        help="Pin the task kind (math, reasoning, translation, creative, code, factual, chat).",
    ),
    click.option(
        "--param",
        "pins",
        multiple=True,
        metavar="KEY=VALUE",
        help="Pin a hyperparameter (repeatable).",
    ),
    click.option("--max-retries", type=int, help="Retries after the first attempt."),
    click.option("--no-critique", is_flag=True, help="One attempt, no critique."),
)


def _apply(command: F, options: tuple[Callable[[F], F], ...]) -> F:
    for option in reversed(options):
        command = option(command)
    return command


def _gathered(
    command: Callable[..., Any],
    names: tuple[str, ...],
    into: str,
    settings: Callable[..., dict[str, Any]],
) -> Callable[..., Any]:
    """``command`` called with the option values ``names`` replaced by ``into=settings(...)``."""

    @functools.wraps(command)
    def with_settings(*args: Any, **values: Any) -> Any:
        gathered = settings(*(values.pop(name) for name in names))
        return command(*args, **{into: gathered}, **values)

    return with_settings


def backend_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add --backend, --base-url, --model, --proposer-model and --model-path to a command.

    The command receives them as one ``backend_choice`` argument, their `backend_settings`.
    """
    names = ("backend", "base_url", "model", "proposer_model", "model_path")
    return _apply(_gathered(command, names, "backend_choice", backend_settings), _OPTIONS)


def strategy_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add --seed, --classifier, --proposer, --critic and --head to a command.

    The command receives them as one ``strategy`` argument, their `strategy_settings`.
    """
    names = ("seed", "classifier", "proposer", "critic", "head_path")
    return _apply(_gathered(command, names, "strategy", strategy_settings), _STRATEGY_OPTIONS)


def parse_pins(pairs: tuple[str, ...]) -> dict[str, float]:
    """``--param KEY=VALUE`` pairs, parsed as chat's ``/set`` parses one (bounds come later)."""
    from hag_agent.chat.settings import parse_assignment

    pins: dict[str, float] = {}
    for pair in pairs:
        try:
            key, value = parse_assignment(pair)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--param") from None
        pins[key] = value
    return pins


def run_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add --task, --param, --max-retries and --no-critique to a command.

    The command receives them as one ``run_choice`` argument, their `run_settings`.
    """
    names = ("task", "pins", "max_retries", "no_critique")
    return _apply(_gathered(command, names, "run_choice", run_settings), _RUN_OPTIONS)


def run_settings(
    task: str | None, pins: tuple[str, ...], max_retries: int | None, no_critique: bool
) -> dict[str, Any]:
    """The `HAGContext` settings of the run options (unset ones are None)."""
    return {
        "task": task,
        "params": parse_pins(pins) or None,
        "max_retries": max_retries,
        "critique": False if no_critique else None,
    }


def strategy_settings(
    seed: int | None,
    classifier: str | None,
    proposer: str | None,
    critic: str | None,
    head_path: str | None,
) -> dict[str, Any]:
    """The `HAGContext` settings of the strategy options (no proposer: `proposer_for` decides)."""
    return {
        "seed": seed,
        "classifier": classifier,
        "proposer": proposer,
        "head_path": head_path,
        "critic": critic,
    }


def backend_settings(
    backend: str | None,
    base_url: str | None,
    model: str | None,
    proposer_model: str | None,
    model_path: str | None,
) -> dict[str, Any]:
    """The `HAGContext` settings those options stand for (unset ones left to the environment)."""
    options = {
        "base_url": base_url,
        "model": model,
        "proposer_model": proposer_model,
        "model_path": model_path,
    }
    return {
        "backend": backend or ("vllm" if base_url else None),
        "backend_options": {k: v for k, v in options.items() if v is not None} or None,
    }
