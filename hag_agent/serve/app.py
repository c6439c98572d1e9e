"""The FastAPI app: the routes, the guards in front of them, and errors in OpenAI's format.

``create_app`` takes the server's settings and, optionally, a model object (a `Backend` or a
LangChain chat model: tests and embedding applications); otherwise the run settings name the
backend, as for ``hag-agent run``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from hag_agent import __version__
from hag_agent.backend_choice import resolve_backend
from hag_agent.errors import HAGError
from hag_agent.runnable import HAGRunnable
from hag_agent.serve.admission import Admission
from hag_agent.serve.api_errors import APIError, bad_request, from_hag_error
from hag_agent.serve.auth import check_bearer
from hag_agent.serve.body_limit import BodyLimit
from hag_agent.serve.completions import ClientGone, Completions
from hag_agent.serve.metrics import CONTENT_TYPE, ServerMetrics
from hag_agent.serve.protocol import ChatCompletionRequest
from hag_agent.serve.readiness import Readiness, probe
from hag_agent.serve.settings import ServerSettings

_bearer = HTTPBearer(auto_error=False, description="An API key the server was given.")


def create_app(settings: ServerSettings, *, model: Any = None) -> FastAPI:
    """The server as an ASGI app.

    Args:
        settings: The server's settings (its run settings name the backend).
        model: A `Backend` or LangChain chat model to use instead of the named backend.

    Raises:
        InvalidSettingsError: For run settings that cannot run.
    """
    runnable = HAGRunnable(model=model, context=dict(settings.run_settings))
    metrics = ServerMetrics()
    completions = Completions(
        settings, runnable, Admission(settings.max_concurrency, settings.retry_after_s), metrics
    )
    warm_up: dict[str, asyncio.Task[Readiness]] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Load the model (or reach the server) while /health already answers.
        warm_up["task"] = asyncio.create_task(probe(resolve_backend(runnable.run_context())))
        yield
        warm_up["task"].cancel()
        await completions.sessions.close()
        if completions.http is not None:
            await completions.http.aclose()

    app = FastAPI(
        title="hag-agent",
        version=__version__,
        summary="OpenAI-compatible chat completions whose decoding settings the model chooses "
        "(Hyperparameter Aware Generation).",
        lifespan=lifespan,
    )
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    _add_error_handlers(app)
    _add_v1_routes(app, settings, completions)
    _add_service_routes(app, metrics, warm_up, runnable)
    return app


def _add_v1_routes(app: FastAPI, settings: ServerSettings, completions: Completions) -> None:
    """The OpenAI-compatible routes, behind the API keys."""
    keys = settings.key_values()

    def authorized(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> None:
        given = f"Bearer {credentials.credentials}" if credentials is not None else None
        check_bearer(given, keys)

    @app.post("/v1/chat/completions", dependencies=[Depends(authorized)])
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
        """A chat completion whose decoding settings HAG chose (``stream: true``: events)."""
        return await completions.handle(body, request)

    @app.get("/v1/models", dependencies=[Depends(authorized)])
    async def models() -> dict[str, Any]:
        """The model names requests may use."""
        created = int(time.time())
        data = [
            {"id": name, "object": "model", "created": created, "owned_by": "hag-agent"}
            for name in settings.served_models()
        ]
        return {"object": "list", "data": data}


def _add_service_routes(
    app: FastAPI,
    metrics: ServerMetrics,
    warm_up: dict[str, asyncio.Task[Readiness]],
    runnable: HAGRunnable,
) -> None:
    @app.get("/health")
    async def health() -> dict[str, str]:
        """The server is up (says nothing of the backend: see /ready)."""
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> JSONResponse:
        """The backend can answer: the model loaded, or the upstream server reachable."""
        task = warm_up.get("task")
        if task is None or not task.done():
            return JSONResponse({"ready": False, "detail": "starting"}, status_code=503)
        verdict = await probe(resolve_backend(runnable.run_context()))
        body = {"ready": verdict.ready, "detail": verdict.detail}
        return JSONResponse(body, status_code=200 if verdict.ready else 503)

    @app.get("/metrics")
    async def prometheus_metrics() -> Response:
        """Prometheus metrics, in its text format."""
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)


def _add_error_handlers(app: FastAPI) -> None:
    async def api_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, ClientGone):
            return Response(status_code=204)  # nobody reads it
        assert isinstance(exc, HAGError)
        error = from_hag_error(exc)
        return JSONResponse(error.body(), status_code=error.status, headers=error.headers)

    async def invalid_request(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return await api_error(request, validation_error(exc))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        error = APIError(exc.status_code, str(exc.detail), code="not_found")
        return JSONResponse(error.body(), status_code=exc.status_code)

    async def server_error(request: Request, exc: Exception) -> Response:
        # A bug, not a request's fault: the client still gets OpenAI's format, without the
        # exception's text (it may quote anything); uvicorn logs the traceback.
        error = APIError(500, "internal error in hag-agent serve", code="internal_error")
        return JSONResponse(error.body(), status_code=500)

    app.add_exception_handler(Exception, server_error)
    app.add_exception_handler(HAGError, api_error)
    app.add_exception_handler(ClientGone, api_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(StarletteHTTPException, http_error)


def validation_error(exc: RequestValidationError) -> APIError:
    """A 400 naming the first field the request got wrong (``hag.max_retries``, ``messages``)."""
    first = exc.errors()[0]
    location = [str(p) for p in first.get("loc", ())]
    if location and location[0] == "body":
        location = location[1:]
    param = _dotted(location) or None
    kind = first.get("type", "")
    if kind == "extra_forbidden":
        message = f"unknown field {param}: not part of the protocol or of the hag options"
    elif kind == "json_invalid":
        message = "the body is not valid JSON"
    else:
        message = f"{param or 'body'}: {first.get('msg', 'invalid')}"
    return bad_request(message, param, kind or "invalid_value")


def _dotted(location: list[str]) -> str:
    text = ""
    for part in location:
        text += f"[{part}]" if part.isdigit() else (f".{part}" if text else part)
    return text


__all__ = ["create_app", "validation_error"]
