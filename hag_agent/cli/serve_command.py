"""``hag-agent serve``: HAG behind an OpenAI-compatible HTTP API."""

from __future__ import annotations

import os
import socket
from typing import Any

import click

from hag_agent.cli.backend_options import backend_options, run_options, strategy_options
from hag_agent.cli.exit_codes import HAGCommand
from hag_agent.cli.option_kinds import defaulted_option

KEYS_VARIABLE = "HAG_SERVER_API_KEYS"
"""Comma-separated API keys, read when no --api-key is given."""


@click.command("serve", cls=HAGCommand)
@defaulted_option("--host", default="127.0.0.1", help="Interface to listen on.")
@defaulted_option("--port", default=8080, help="TCP port (0: any free one).")
@backend_options
@run_options
@strategy_options
@click.option(
    "--api-key",
    "api_keys",
    multiple=True,
    help=f"A bearer key callers must send on /v1 (repeatable; else ${KEYS_VARIABLE}, "
    "comma-separated; none: no authentication).",
)
@defaulted_option("--max-concurrency", default=8, help="Requests in flight; more get 429.")
@defaulted_option(
    "--workers",
    default=1,
    help="Server processes sharing the port (each its own backend and --max-concurrency).",
)
@defaulted_option("--max-body-bytes", default=4 * 2**20, help="Largest request body; 413 above.")
@defaulted_option(
    "--client-params",
    default="pin",
    type=click.Choice(["pin", "ignore"]),
    help="Sampling values a client sends: pin them (the client's word wins) or ignore them.",
)
@click.option("--model-name", help="The model name clients use [default: --model, or hag-agent].")
@click.option(
    "--served-model",
    "other_models",
    multiple=True,
    help="Another upstream model a request may name (endpoint backends; repeatable).",
)
@click.option(
    "--passthrough",
    is_flag=True,
    help="Forward requests HAG cannot honour (tools, response_format, n > 1 ...) to the "
    "upstream unchanged, with x-hag-applied: false (endpoint backends).",
)
@click.option(
    "--sessions",
    metavar="DIR|FILE|URL",
    help="Where hag.session conversations are kept: a directory, a .sqlite file or a "
    "postgresql:// URL [default: $HAG_SESSIONS_URL, else the chat's data directory].",
)
@defaulted_option("--drain-seconds", default=30.0, help="On SIGTERM, time to finish requests.")
@defaulted_option(
    "--log-level",
    default="info",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    help="uvicorn's log level.",
)
def serve(
    host: str,
    port: int,
    backend_choice: dict[str, Any],
    run_choice: dict[str, Any],
    strategy: dict[str, Any],
    api_keys: tuple[str, ...],
    max_concurrency: int,
    workers: int,
    max_body_bytes: int,
    client_params: str,
    model_name: str | None,
    other_models: tuple[str, ...],
    passthrough: bool,
    sessions: str | None,
    drain_seconds: float,
    log_level: str,
) -> None:
    """Serve HAG as OpenAI-compatible chat completions (POST /v1/chat/completions).

    Any OpenAI client works by pointing its base URL here; per request, `hag` options in the
    body (extra_body in the SDKs) choose the proposer, retries, critique, task and pins.
    With no options it serves the embedded model. SIGTERM (or Ctrl-C) lets requests in flight
    finish, then exits.

    Exit codes: 0 stopped, 2 bad usage or settings, 3 backend failure at start.
    """
    settings_of_runs = {**run_choice, **backend_choice, **strategy}
    keys = api_keys or tuple(k for k in os.environ.get(KEYS_VARIABLE, "").split(",") if k)
    settings = _settings(
        host=host,
        port=port or _free_port(host),
        api_keys=keys,
        max_concurrency=max_concurrency,
        workers=workers,
        max_body_bytes=max_body_bytes,
        client_params=client_params,
        model_name=model_name,
        other_models=other_models,
        passthrough=passthrough,
        sessions=sessions,
        drain_s=drain_seconds,
        run_settings={k: v for k, v in settings_of_runs.items() if v is not None},
    )
    _run(settings, log_level)


def _settings(**values: Any) -> Any:
    from pydantic import ValidationError

    from hag_agent.errors import invalid_setting
    from hag_agent.serve.settings import ServerSettings

    try:
        return ServerSettings(**values)
    except ValidationError as exc:
        raise invalid_setting(exc) from None


def _run(settings: Any, log_level: str) -> None:
    try:
        import uvicorn

        from hag_agent.serve.app import create_app
    except ImportError as exc:
        from hag_agent.errors import ConfigurationError

        raise ConfigurationError(
            f"hag-agent serve needs the serve extra ({exc.name} is missing): "
            "pip install 'hag-agent[serve]'"
        ) from None

    app = create_app(settings)  # checks every setting before anything starts
    _announce(settings)
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": log_level,
        "timeout_graceful_shutdown": settings.drain_s,
    }
    if settings.workers == 1:
        uvicorn.Server(uvicorn.Config(app, **options)).run()
        return
    _run_workers(settings, options)


def _run_workers(settings: Any, options: dict[str, Any]) -> None:
    """Run uvicorn's worker processes, their settings and metrics directory in the environment."""
    import shutil
    import tempfile

    import uvicorn

    from hag_agent.serve.workers import FACTORY, worker_environment

    metrics_dir = tempfile.mkdtemp(prefix="hag-serve-metrics-")
    os.environ.update(worker_environment(settings, metrics_dir))
    try:
        uvicorn.run(FACTORY, factory=True, workers=settings.workers, **options)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _announce(settings: Any) -> None:
    url = f"http://{settings.host}:{settings.port}/v1"
    auth = ' -H "Authorization: Bearer $KEY"' if settings.api_keys else ""
    body = (
        f'{{"model": "{settings.served_model()}", '
        '"messages": [{"role": "user", "content": "Write a haiku about the sea"}]}'
    )
    click.echo(f"hag-agent serving {settings.served_model()} at {url}")
    click.echo(
        f"try: curl {url}/chat/completions -H 'Content-Type: application/json'{auth} -d '{body}'"
    )
    if settings.api_keys:
        click.echo(f"{len(settings.api_keys)} API key(s) required on /v1")
    if settings.workers > 1:
        click.echo(f"{settings.workers} worker processes")
    from hag_agent.sessions import sessions_location

    click.echo(
        f"hag.session conversations are kept in {sessions_location(settings.sessions).describe()}"
    )


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port
