"""The ``train`` extra: which of its packages are missing, and the error that names them."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

from hag_agent.errors import ConfigurationError

INSTALL_HINT = "pip install 'hag-agent[train]'"
"""What installs the training packages."""


def missing_packages(names: Sequence[str]) -> list[str]:
    """The packages of ``names`` that are not installed (found without importing them)."""
    return [name for name in names if importlib.util.find_spec(name) is None]


def require_packages(missing: Sequence[str], purpose: str) -> None:
    """Raise `ConfigurationError` ("PURPOSE needs A, B: pip install ...") when any is missing."""
    if missing:
        raise ConfigurationError(f"{purpose} needs {', '.join(missing)}: {INSTALL_HINT}")


__all__ = ["INSTALL_HINT", "missing_packages", "require_packages"]
