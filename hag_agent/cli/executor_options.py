"""Where a search's cases run: ``--executor local|ray``, ``--ray-address`` and ``--workers``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

import click

from hag_agent.cli.option_kinds import F, defaulted_option

if TYPE_CHECKING:
    from hag_agent.search.executor import Executor

ExecutorName = Literal["local", "ray"]


def executor_options(command: F) -> F:
    """Add ``--executor``, ``--ray-address`` and ``--workers`` to ``command``."""
    decorators: list[Callable[[F], F]] = [
        defaulted_option(
            "--executor",
            default="local",
            type=click.Choice(["local", "ray"]),
            help="Where cases run: this process, or Ray workers (pip install 'hag-agent[scale]').",
        ),
        click.option(
            "--ray-address",
            help="With --executor ray: a running cluster (HOST:PORT); default: Ray in process.",
        ),
        click.option(
            "--workers",
            type=int,
            help="With --executor ray: workers, i.e. cases at once (default: one per CPU).",
        ),
    ]
    for decorate in reversed(decorators):
        command = decorate(command)
    return command


def chosen_executor(
    executor: ExecutorName, ray_address: str | None, workers: int | None, concurrency: int
) -> Executor:
    """The executor the options name; ``concurrency`` is per worker on Ray.

    Raises:
        click.BadParameter: For Ray options without ``--executor ray``, or workers below 1.
    """
    from hag_agent.search.executor import LocalExecutor

    if executor == "local":
        for value, option in ((ray_address, "--ray-address"), (workers, "--workers")):
            if value is not None:
                raise click.BadParameter("needs --executor ray", param_hint=option)
        return LocalExecutor(concurrency)
    if workers is not None and workers < 1:
        raise click.BadParameter("must be at least 1", param_hint="--workers")
    from hag_agent.search.ray_executor import RayExecutor

    return RayExecutor(address=ray_address, workers=workers, concurrency=concurrency)


__all__ = ["ExecutorName", "chosen_executor", "executor_options"]
