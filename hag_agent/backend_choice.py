"""Which backend a run uses: the context's own model, else a named backend, shared across runs.

The backend layer knows backends by name and builds them from their options; which one a run
uses (`HAGContext.chat_model` or ``backend`` with ``backend_options``) and the sharing of built
backends between runs belong to the core, which owns the run's settings.
"""

from __future__ import annotations

import json
import threading

from hag_agent.backends.base import Backend
from hag_agent.backends.chat_model import as_backend
from hag_agent.backends.registry import create_backend
from hag_agent.context import HAGContext, environment_snapshot

_instances: dict[str, Backend] = {}
_lock = threading.Lock()


def resolve_backend(context: HAGContext) -> Backend:
    """The backend of a run: the context's chat model if given, else the named backend.

    Named backends are built once per distinct name, options and ``HAG_*`` environment, so every
    run shares one client (and one loaded model); a run's nodes reuse what its first one got.

    Raises:
        ConfigurationError: For an unknown backend or one that cannot be set up.
        InvalidSettingsError: For a bad backend option.
    """
    if context._backend is None:
        context._backend = (
            as_backend(context.chat_model)
            if context.chat_model is not None
            else _shared_backend(context)
        )
    backend: Backend = context._backend
    return backend


def _shared_backend(context: HAGContext) -> Backend:
    key = json.dumps(
        [context.backend, context.backend_options, environment_snapshot()],
        sort_keys=True,
        default=str,
    )
    with _lock:
        backend = _instances.get(key)
    if backend is not None:
        return backend
    backend = create_backend(context.backend, context.backend_options)
    with _lock:
        return _instances.setdefault(key, backend)
