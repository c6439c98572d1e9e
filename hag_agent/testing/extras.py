"""Which of hag-agent's optional extras are installed: the one skip policy of its tests.

A test that needs an extra skips, naming the extra, its missing packages and how to install it.
The packages of each extra are read from hag-agent's own installed metadata (``pyproject.toml``'s
optional dependencies), so the policy never drifts from the extras themselves.
"""

from __future__ import annotations

import re
from importlib import metadata

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def extra_packages(extra: str) -> list[str]:
    """The distributions extra ``extra`` of hag-agent requires directly."""
    names = []
    for requirement in metadata.requires("hag-agent") or []:
        spec, _, marker = requirement.partition(";")
        if re.search(rf"""extra\s*==\s*["']{re.escape(extra)}["']""", marker):
            found = _NAME.match(spec.strip())
            if found:
                names.append(found.group(0))
    return names


def missing_extra(extra: str) -> list[str]:
    """The distributions of extra ``extra`` that are not installed."""
    missing = []
    for name in extra_packages(extra):
        try:
            metadata.version(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
    return missing


def skip_reason(extra: str, missing: list[str]) -> str:
    """Why a test skips: the extra, its missing packages, and the install command."""
    return f"needs the {extra} extra (missing: {', '.join(missing)}): pip install -e '.[{extra}]'"


__all__ = ["extra_packages", "missing_extra", "skip_reason"]
