"""The command line's exit codes."""

EXIT_USAGE = 2
"""Bad usage or input (including settings out of bounds)."""
EXIT_BACKEND = 3
"""The model backend failed after its retries."""
EXIT_INTERRUPTED = 130
"""Ctrl-C."""
