"""The ``hag-agent`` command line: parse, call the library, render, map errors to exit codes.

The top layer: it may import every other package. Commands hold no business logic: they turn
options into the library's validated settings, call a job with a `ProgressView` as its progress
callback, and render the result with rich; typed errors become exit codes in one place
(`hag_agent.cli.exit_codes`). Each command's help text is its docstring.
"""

from hag_agent.cli.main import cli, main

__all__ = ["cli", "main"]
