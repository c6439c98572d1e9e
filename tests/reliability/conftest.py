"""The reliability tier: measured figures for docs/reliability.md, run by `.ci/run` on its own.

Every test here is marked ``reliability``. Hypothesis runs derandomized with a fixed number of
examples and no example database, so a run in CI draws the same cases as a run on a laptop and
the counts in the table are the counts the tests check.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

from .figures import FIGURES

settings.register_profile(
    "reliability",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("reliability")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "reliability" in str(item.fspath):
            item.add_marker(pytest.mark.reliability)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the figures the tests gathered (see `figures`)."""
    if not FIGURES:
        return
    terminalreporter.section("reliability figures")
    for row, counts in sorted(FIGURES.items()):
        figures = ", ".join(f"{count} {name}" for name, count in counts.items())
        terminalreporter.write_line(f"{row}: {figures}")
