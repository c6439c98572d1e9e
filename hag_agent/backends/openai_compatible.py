"""OpenAI-compatible endpoints: vLLM in production, and llama.cpp's server.

`ChatOpenAI` does the HTTP; this module decides what goes on the wire and what to do when the
wire fails. Every sampling value is sent explicitly on every call, because vLLM otherwise applies
the model's generation_config.json defaults silently. vLLM-only knobs travel in ``extra_body``.
Transport faults (refused or reset connections, timeouts, 429, 5xx) are retried with tenacity:
exponential backoff with jitter (or the server's Retry-After), a bounded number of tries and an
overall deadline; other 4xx are not retried. What finally fails raises a typed `BackendError`
carrying the status and the start of the body.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal

import httpx
import openai
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from hag_agent.backends.base import (
    DECISION_PARAMS,
    Backend,
    Capabilities,
    T,
    numeric_keys,
)
from hag_agent.errors import (
    BackendError,
    BackendTimeoutError,
    BackendUnavailableError,
    ConfigurationError,
)
from hag_agent.hyperparameters import HyperParams

if TYPE_CHECKING:
    from hag_agent.context import HAGContext

Flavor = Literal["vllm", "llama.cpp"]


class EndpointOptions(BaseSettings):
    """Options of an OpenAI-compatible endpoint; each reads ``HAG_<NAME>`` when not given."""

    model_config = SettingsConfigDict(env_prefix="HAG_", extra="forbid")

    base_url: str | None = None
    """The server's OpenAI-compatible root, e.g. ``http://127.0.0.1:8000/v1``."""
    model: str | None = None
    """The served model name that answers."""
    proposer_model: str | None = None
    """A served model name for the proposal call only (e.g. a LoRA adapter ``hag``)."""
    api_key: SecretStr = SecretStr("EMPTY")
    """The API key (vLLM accepts any unless started with ``--api-key``)."""
    timeout: float = Field(default=60.0, gt=0)
    """Seconds one request may take."""
    max_tries: int = Field(default=4, ge=1, le=20)
    """Tries per call, the first included."""
    deadline: float = Field(default=120.0, gt=0)
    """Seconds all tries of one call may take together."""
    flavor: Flavor = "vllm"
    """Server dialect: ``vllm`` or ``llama.cpp`` (names of the penalty and structured output)."""
    proposal_decoding: Literal["regex", "json"] = "regex"
    """vLLM only, how the proposal is decoded: ``regex``, under a regex of the exact compact
    object (keys fixed, numbers bounded, no whitespace); ``json``, under its json_schema."""


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    value = headers.get("retry-after") if headers is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def is_transient(exc: BaseException) -> bool:
    """Faults worth another try: connection, timeout, 429 and 5xx."""
    if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code == 429 or exc.status_code >= 500
    return False


class OpenAICompatibleBackend(Backend):
    """A vLLM (or llama.cpp) server behind its OpenAI-compatible API."""

    name = "vllm"

    def __init__(self, options: EndpointOptions) -> None:
        """Create the backend.

        Raises:
            ConfigurationError: When the base URL or the model name is missing.
        """
        if not options.base_url:
            raise ConfigurationError("the endpoint backend needs a base URL: set HAG_BASE_URL")
        if not options.model:
            raise ConfigurationError("the endpoint backend needs a model name: set HAG_MODEL")
        self.options = options
        self.name = "vllm" if options.flavor == "vllm" else "llamacpp-server"
        self.capabilities = Capabilities(
            structured_output="json_schema" if options.flavor == "vllm" else "json_object",
            # llama.cpp's server gives logprobs only when started with logits_all.
            logprobs=options.flavor == "vllm",
            seed=True,
            # llama-cpp-python's server reuses its prompt cache across requests, and llama.cpp's
            # results depend slightly on how a prompt was split into batches.
            reproducible=options.flavor == "vllm",
            top_k=True,
            min_p=True,
            repetition_penalty_name=(
                "repetition_penalty" if options.flavor == "vllm" else "repeat_penalty"
            ),
            streaming=True,
            # llama-cpp-python's server answers a rejected value with 500, not 400.
            validates_params=options.flavor == "vllm",
        )
        answer = self._chat_model(options.model)
        proposer = self._chat_model(options.proposer_model) if options.proposer_model else None
        super().__init__(answer, proposal_model=proposer)
        self._wait_backoff = wait_random_exponential(multiplier=0.5, max=8.0)
        self._loop_models: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[str, BaseChatModel]
        ] = weakref.WeakKeyDictionary()

    def _chat_model(self, model: str, **client: Any) -> ChatOpenAI:
        return ChatOpenAI(
            model=model,
            base_url=self.options.base_url,
            api_key=self.options.api_key,
            timeout=min(self.options.timeout, self.options.deadline),
            max_retries=0,  # retries are ours: one policy, one deadline
            stream_usage=True,
            **client,
        )

    # -- what goes on the wire -------------------------------------------------------------

    def call_kwargs(self, params: HyperParams, seed: int | None) -> dict[str, Any]:
        """Every sampling value, explicitly; vLLM-only ones in ``extra_body``."""
        extra: dict[str, Any] = {"top_k": params.top_k, "min_p": params.min_p}
        extra[self.capabilities.repetition_penalty_name or "repetition_penalty"] = (
            params.repetition_penalty
        )
        kwargs: dict[str, Any] = {
            "temperature": params.temperature,
            "top_p": params.top_p,
            "extra_body": extra,
        }
        if self.options.flavor == "llama.cpp":
            # ChatOpenAI sends max_tokens as max_completion_tokens, which llama.cpp ignores.
            extra["max_tokens"] = params.max_tokens
        else:
            kwargs["max_tokens"] = params.max_tokens
        if self.capabilities.logprobs:
            kwargs["logprobs"] = True
        if seed is not None:
            kwargs["seed"] = seed
        return kwargs

    def decision_kwargs(self, schema: type[BaseModel], max_tokens: int) -> dict[str, Any]:
        """As for generation, without logprobs, plus structured output in ``extra_body``."""
        params = DECISION_PARAMS.model_copy(update={"max_tokens": max_tokens})
        kwargs = self.call_kwargs(params, seed=None)
        kwargs.pop("logprobs", None)
        kwargs["extra_body"] = {**kwargs["extra_body"], **self.structured_kwargs(schema)}
        return kwargs

    def structured_kwargs(self, schema: type[BaseModel]) -> dict[str, Any]:
        """``response_format`` json_schema for vLLM (never the removed ``guided_json``).

        It travels in ``extra_body``: given as ChatOpenAI's own ``response_format`` argument it
        switches langchain-openai to its parse path, which raises on a cut-off answer instead of
        returning it (and a cut-off decision is model nonsense, to be replaced, not a failure).
        """
        keys = numeric_keys(schema)
        if self.options.flavor == "vllm" and self.options.proposal_decoding == "regex" and keys:
            return {"structured_outputs": {"regex": object_regex(keys)}}
        # No keys beyond the schema's: a tighter grammar leaves a small model less to wander in.
        json_schema = {**schema.model_json_schema(), "additionalProperties": False}
        if self.options.flavor == "llama.cpp":
            return {"response_format": {"type": "json_object", "schema": json_schema}}
        return {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": schema.__name__, "schema": json_schema},
            }
        }

    # -- what to do when the wire fails ----------------------------------------------------

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        hinted = _retry_after(exc) if exc is not None else None
        wait = hinted if hinted is not None else self._wait_backoff(state)
        left = self.options.deadline - (time.monotonic() - state.start_time)
        return max(0.0, min(wait, left))

    def _policy(self) -> dict[str, Any]:
        return {
            "stop": stop_after_attempt(self.options.max_tries)
            | stop_after_delay(self.options.deadline),
            "wait": self._wait,
            "retry": retry_if_exception(is_transient),
            "reraise": True,
        }

    def with_retries(self, call: Callable[[], T]) -> T:
        """Retry transient faults within the tries and the deadline; typed errors at the end."""
        tries = 0
        try:
            for attempt in Retrying(**self._policy()):
                with attempt:
                    tries += 1
                    return call()
        except Exception as exc:
            raise self.to_backend_error(exc, tries=tries) from exc
        raise AssertionError("unreachable: tenacity re-raises the last error")

    async def awith_retries(self, call: Callable[[], Awaitable[T]]) -> T:
        """Async `with_retries`."""
        tries = 0
        try:
            async for attempt in AsyncRetrying(**self._policy()):
                with attempt:
                    tries += 1
                    return await call()
        except Exception as exc:
            raise self.to_backend_error(exc, tries=tries) from exc
        raise AssertionError("unreachable: tenacity re-raises the last error")

    def async_model(self, model: BaseChatModel) -> BaseChatModel:
        """The same model with an HTTP client of the running event loop's own.

        langchain-openai shares one async HTTP client per process, bound to the first event
        loop that used it; a second ``asyncio.run`` would then fail with "Event loop is closed".
        """
        loop = asyncio.get_running_loop()
        per_loop = self._loop_models.setdefault(loop, {})
        name = str(getattr(model, "model_name", ""))
        if name not in per_loop:
            per_loop[name] = self._chat_model(name, http_async_client=httpx.AsyncClient())
        return per_loop[name]

    def to_backend_error(self, exc: Exception, tries: int = 1) -> BackendError:
        """Map openai's exceptions onto ours, with status and the start of the body."""
        if isinstance(exc, BackendError):
            return exc
        where = f"{self.name} at {self.options.base_url}"
        after = f" after {tries} tr{'y' if tries == 1 else 'ies'}"
        if isinstance(exc, openai.APITimeoutError):
            return BackendTimeoutError(f"{where} timed out{after}")
        if isinstance(exc, openai.APIConnectionError):
            return BackendUnavailableError(f"{where} unreachable{after}: {exc}")
        if isinstance(exc, openai.APIStatusError):
            body = _body_text(exc)
            return BackendError(
                f"{where} answered an error{after}", status=exc.status_code, body=body
            )
        if isinstance(exc, openai.APIResponseValidationError):
            return BackendError(
                f"{where} sent a malformed response{after}",
                status=exc.status_code,
                body=_body_text(exc),
            )
        return BackendError(f"{where} call failed{after}: {type(exc).__name__}: {exc}")


# A number of each kind, digits bounded so a confused model stops.
_NUMBER_REGEX = {"float": r"-?[0-9]{1,6}(\.[0-9]{1,4})?", "int": r"-?[0-9]{1,7}"}


def object_regex(keys: dict[str, str]) -> str:
    """A regex for the compact JSON object with exactly these keys, in order, and numbers."""
    fields = ",".join(f'"{key}":{_NUMBER_REGEX[kind]}' for key, kind in keys.items())
    return "\\{" + fields + "\\}"


def _body_text(exc: openai.APIStatusError | openai.APIResponseValidationError) -> str:
    try:
        return exc.response.text
    except Exception:  # a streamed body cannot be read twice
        return str(exc.body or "")


def create_vllm(context: HAGContext) -> OpenAICompatibleBackend:
    """Registry factory for a vLLM endpoint."""
    return OpenAICompatibleBackend(EndpointOptions(**{"flavor": "vllm", **context.backend_options}))


def create_llamacpp_server(context: HAGContext) -> OpenAICompatibleBackend:
    """Registry factory for llama.cpp's OpenAI-compatible server."""
    return OpenAICompatibleBackend(
        EndpointOptions(**{"flavor": "llama.cpp", **context.backend_options})
    )
