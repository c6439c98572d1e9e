"""The ``hag-agent`` command line."""

from hag_agent.cli.main import cli, main

__all__ = ["cli", "main"]
