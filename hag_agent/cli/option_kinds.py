"""The kinds of click option the commands repeat: a file, a folder, a value with a shown default.

Each builder fixes what every option of its kind shares (click's path type with ``pathlib``
paths; ``show_default``), so a command states only the option's names, default and help.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])
"""A decorated command (what an option decorator takes and returns)."""


def file_option(*decls: str, help: str | None = None, required: bool = False) -> Callable[[F], F]:
    """An option naming a file (not a folder), given to the command as a `Path`."""
    return click.option(
        *decls,
        type=click.Path(dir_okay=False, path_type=Path),
        required=required,
        help=help,
    )


def folder_option(*decls: str, help: str | None = None, required: bool = False) -> Callable[[F], F]:
    """An option naming a folder (not a file), given to the command as a `Path`."""
    return click.option(
        *decls,
        type=click.Path(file_okay=False, path_type=Path),
        required=required,
        help=help,
    )


def defaulted_option(
    *decls: str,
    default: Any,
    type: Any = None,
    help: str | None = None,
) -> Callable[[F], F]:
    """An option with a default, which --help shows (``[default: ...]``).

    Without a ``type``, click takes the default's (an ``int`` default makes an integer option).
    """
    return click.option(*decls, type=type, default=default, show_default=True, help=help)


__all__ = ["F", "defaulted_option", "file_option", "folder_option"]
