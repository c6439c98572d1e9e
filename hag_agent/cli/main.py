"""``hag-agent``: let a language model choose its own decoding settings (HAG).

Each command's help text is its docstring.
"""

from __future__ import annotations

import click

from hag_agent import __version__
from hag_agent.cli.chat_command import chat
from hag_agent.cli.dataset_command import dataset
from hag_agent.cli.eval_command import eval_command
from hag_agent.cli.exit_codes import HAGGroup
from hag_agent.cli.graph_command import graph
from hag_agent.cli.run_command import run
from hag_agent.cli.serve_command import serve
from hag_agent.cli.train_command import train
from hag_agent.cli.train_head_command import head
from hag_agent.cli.train_prior_command import prior


@click.group(cls=HAGGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hag-agent")
def cli() -> None:
    """Hyperparameter Aware Generation: the model picks its decoding settings, then answers."""


cli.add_command(run)
cli.add_command(chat)
cli.add_command(dataset)
cli.add_command(eval_command)
train.add_command(head)
train.add_command(prior)
cli.add_command(train)
cli.add_command(graph)
cli.add_command(serve)


def main() -> None:
    """Console-script entry point: typed errors become messages and exit codes, never tracebacks.

    Every command reports its failures through `hag_agent.cli.exit_codes.failure_exit` (a
    `BackendError` exits 3, any other `HAGError` or an `OSError` 2, Ctrl-C 130); click's own
    usage errors keep click's message and code.
    """
    cli.main()
