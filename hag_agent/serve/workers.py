"""Several server processes (``--workers N``): how each one gets its settings.

uvicorn starts each worker as a fresh interpreter that imports an app factory, so the parent
hands the settings over in the environment: the API keys in ``HAG_SERVER_API_KEYS`` (the
variable the command reads them from anyway), everything else as JSON. Prometheus' multiprocess
mode (a directory of per-process files, named by ``PROMETHEUS_MULTIPROC_DIR``) adds every
worker's metrics up, so ``/metrics`` tells the same totals whichever worker answers it.
"""

from __future__ import annotations

import os

from fastapi import FastAPI
from pydantic import SecretStr

from hag_agent.errors import ConfigurationError
from hag_agent.serve.app import create_app
from hag_agent.serve.metrics import MULTIPROCESS_DIR_VARIABLE
from hag_agent.serve.settings import ServerSettings

KEYS_VARIABLE = "HAG_SERVER_API_KEYS"
"""Comma-separated API keys."""
SETTINGS_VARIABLE = "HAG_SERVE_WORKER_SETTINGS"
"""The workers' settings as JSON, without the API keys."""
FACTORY = "hag_agent.serve.workers:app_from_environment"
"""The import string uvicorn's workers build their app with."""


def worker_environment(settings: ServerSettings, metrics_dir: str) -> dict[str, str]:
    """What the parent puts in the environment for its workers.

    Raises:
        ConfigurationError: For an API key with a comma (the variable separates keys by one).
    """
    keys = [key.get_secret_value() for key in settings.api_keys]
    if any("," in key for key in keys):
        raise ConfigurationError(
            f"with --workers, API keys reach the workers comma-separated in {KEYS_VARIABLE}: "
            "a key may not contain a comma"
        )
    return {
        SETTINGS_VARIABLE: settings.model_dump_json(exclude={"api_keys"}),
        KEYS_VARIABLE: ",".join(keys),
        MULTIPROCESS_DIR_VARIABLE: metrics_dir,
    }


def app_from_environment() -> FastAPI:
    """A worker's app, from the settings its parent put in the environment."""
    settings = ServerSettings.model_validate_json(os.environ[SETTINGS_VARIABLE])
    keys = tuple(SecretStr(k) for k in os.environ.get(KEYS_VARIABLE, "").split(",") if k)
    return create_app(settings.model_copy(update={"api_keys": keys}))


__all__ = [
    "FACTORY",
    "KEYS_VARIABLE",
    "SETTINGS_VARIABLE",
    "app_from_environment",
    "worker_environment",
]
