"""OpenAI-compatible endpoints: vLLM in production, llama.cpp's server, OpenAI's API.

`ChatOpenAI` does the HTTP; this module decides what goes on the wire (as the server's
`ServerProfile` says) and what to do when the wire fails. Every sampling value the server takes
is sent explicitly on every call, because vLLM otherwise applies the model's
generation_config.json defaults silently; those outside the OpenAI API travel in ``extra_body``.
Transport faults (refused or reset connections, timeouts, 429, 5xx) are retried with tenacity:
exponential backoff with jitter (or the server's Retry-After), a bounded number of tries and an
overall deadline, which also bounds a response still arriving (`bounded_transport`); other 4xx
are not retried, nor is a streamed answer that broke after it started (its first tokens were
handed on already). What finally fails raises a typed `BackendError` carrying the status and
the start of the body.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import httpx
import openai
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    stop_any,
    wait_random_exponential,
)
from tenacity.stop import stop_base

from hag_agent.backends.base import (
    DECISION_PARAMS,
    OutputConstraint,
    T,
    numeric_fields,
    pause,
)
from hag_agent.backends.bounded_transport import (
    CallBudget,
    DeadlineReached,
    bounded_async_client,
    bounded_client,
    call_budget,
)
from hag_agent.backends.chat_model import ChatModelBackend
from hag_agent.backends.proposer_card import read_scope
from hag_agent.backends.server_profiles import PROFILES, Flavor, ServerProfile
from hag_agent.errors import (
    BackendError,
    BackendTimeoutError,
    BackendUnavailableError,
    ConfigurationError,
)
from hag_agent.hyperparameters import HyperParams
from hag_agent.redaction import redact
from hag_agent.training_scope import TrainingScope


class EndpointOptions(BaseSettings):
    """Options of an OpenAI-compatible endpoint; each reads ``HAG_<NAME>`` when not given."""

    model_config = SettingsConfigDict(env_prefix="HAG_", extra="forbid")

    base_url: str | None = None
    """The server's OpenAI-compatible root, e.g. ``http://127.0.0.1:8000/v1``."""
    model: str | None = None
    """The served model name that answers."""
    proposer_model: str | None = None
    """A served model name for the proposal call only (e.g. a LoRA adapter ``hag``)."""
    proposer_scope: Path | None = None
    """The proposer model's card (the ``adapter.json`` ``hag-agent train sft`` writes beside its
    adapter): what it was trained on, so that it is asked only within it."""
    api_key: SecretStr = SecretStr("EMPTY")
    """The API key (vLLM accepts any unless started with ``--api-key``)."""
    timeout: float = Field(default=60.0, gt=0)
    """Seconds one request may take."""
    max_tries: int = Field(default=4, ge=1, le=20)
    """Tries per call, the first included."""
    deadline: float = Field(default=120.0, gt=0)
    """Seconds all tries of one call may take together."""
    flavor: Flavor = "vllm"
    """Server dialect: ``vllm``, ``llama.cpp`` or ``openai`` (a `ServerProfile` each)."""
    proposal_decoding: Literal["regex", "json"] = "regex"
    """Where the server takes a regex (vLLM), how a compact numeric object (the proposal) is
    decoded: ``regex``, under a regex of the exact compact object (keys fixed, numbers bounded,
    no whitespace); ``json``, under its json_schema."""


class _NoTimeForAnotherTry(stop_base):
    """Stop when the backend's wait before the next try leaves it no time to make one."""

    def __init__(self, backend: OpenAICompatibleBackend) -> None:
        self.backend = backend

    def __call__(self, retry_state: RetryCallState) -> bool:
        """Whether to stop."""
        return self.backend.no_time_for_another_try(retry_state)


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
    if isinstance(exc, openai.APIConnectionError | httpx.TransportError):  # timeouts included
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code == 429 or exc.status_code >= 500
    return False


class OpenAICompatibleBackend(ChatModelBackend):
    """An OpenAI-compatible server (vLLM, llama.cpp's server, OpenAI) in its `ServerProfile`."""

    name = "vllm"

    def __init__(self, options: EndpointOptions, profile: ServerProfile | None = None) -> None:
        """Create the backend.

        Args:
            options: Where the server is and how to call it.
            profile: The server's dialect; defaults to the one ``options.flavor`` names.

        Raises:
            ConfigurationError: When the base URL or the model name is missing.
        """
        if not options.base_url:
            raise ConfigurationError("the endpoint backend needs a base URL: set HAG_BASE_URL")
        if not options.model:
            raise ConfigurationError("the endpoint backend needs a model name: set HAG_MODEL")
        self.options = options
        self._proposer_scope = self._read_proposer_scope(options)
        self.profile = profile or PROFILES[options.flavor]
        self.name = self.profile.backend_name
        self.capabilities = self.profile.capabilities
        answer = self._chat_model(options.model)
        proposer = self._chat_model(options.proposer_model) if options.proposer_model else None
        super().__init__(answer, proposal_model=proposer)
        self._wait_backoff = wait_random_exponential(multiplier=0.5, max=8.0)
        self._loop_models: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[str, BaseChatModel]
        ] = weakref.WeakKeyDictionary()

    @staticmethod
    def _read_proposer_scope(options: EndpointOptions) -> TrainingScope | None:
        if options.proposer_scope is None:
            return None
        if not options.proposer_model:
            raise ConfigurationError(
                "proposer_scope describes a proposer model: give proposer_model"
            )
        return read_scope(options.proposer_scope)

    def proposer_scope(self) -> TrainingScope | None:
        """The scope on the card the ``proposer_scope`` option names; None without one."""
        return self._proposer_scope

    def _chat_model(self, model: str, **client: Any) -> ChatOpenAI:
        limit = min(self.options.timeout, self.options.deadline)
        return ChatOpenAI(
            model=model,
            base_url=self.options.base_url,
            api_key=self.options.api_key,
            timeout=limit,
            max_retries=0,  # retries are ours: one policy, one deadline
            stream_usage=True,
            http_client=bounded_client(limit),
            **client,
        )

    # -- what goes on the wire -------------------------------------------------------------

    def call_kwargs(self, params: HyperParams, seed: int | None) -> dict[str, Any]:
        """Every sampling value, explicitly; those outside the OpenAI API in ``extra_body``."""
        kwargs: dict[str, Any] = {
            "temperature": params.temperature,
            "top_p": params.top_p,
            "extra_body": self.profile.sampler_body(params),
        }
        if not self.profile.max_tokens_in_body:
            kwargs["max_tokens"] = params.max_tokens
        if self.capabilities.logprobs:
            kwargs["logprobs"] = True
        if seed is not None:
            kwargs["seed"] = seed
        return kwargs

    def decision_kwargs(
        self, schema: type[BaseModel], constraint: OutputConstraint, max_tokens: int
    ) -> dict[str, Any]:
        """As for generation, without logprobs, plus structured output in ``extra_body``."""
        params = DECISION_PARAMS.model_copy(update={"max_tokens": max_tokens})
        kwargs = self.call_kwargs(params, seed=None)
        kwargs.pop("logprobs", None)
        kwargs["extra_body"] = {
            **kwargs["extra_body"],
            **self.structured_kwargs(schema, constraint),
        }
        return kwargs

    def structured_kwargs(
        self, schema: type[BaseModel], constraint: OutputConstraint
    ) -> dict[str, Any]:
        """A regex of the compact object where asked for and taken, else the profile's format.

        The format is the profile's ``response_format`` (never vLLM's removed ``guided_json``).
        It travels in ``extra_body``: given as ChatOpenAI's own ``response_format`` argument it
        switches langchain-openai to its parse path, which raises on a cut-off answer instead of
        returning it (and a cut-off decision is model nonsense, to be replaced, not a failure).
        """
        if (
            constraint is OutputConstraint.COMPACT_NUMERIC_OBJECT
            and self.profile.regex_decoding
            and self.options.proposal_decoding == "regex"
        ):
            return {"structured_outputs": {"regex": object_regex(numeric_fields(schema))}}
        return self.profile.response_format(schema)

    def constrain_answer(
        self, kwargs: dict[str, Any], json_schema: dict[str, Any]
    ) -> dict[str, Any]:
        """The server's structured-output format, in ``extra_body`` as for decisions."""
        name = str(json_schema.get("title") or "answer")
        body = self.profile.json_response_format(json_schema, name)
        return {**kwargs, "extra_body": {**kwargs.get("extra_body", {}), **body}}

    # -- what to do when the wire fails ----------------------------------------------------

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        hinted = _retry_after(exc) if exc is not None else None
        wait = hinted if hinted is not None else self._wait_backoff(state)
        return max(0.0, min(wait, self._left(state)))

    def _left(self, state: RetryCallState) -> float:
        return self.options.deadline - (time.monotonic() - state.start_time)

    def no_time_for_another_try(self, state: RetryCallState) -> bool:
        """Whether the wait before the next try takes what is left of the deadline.

        After a long Retry-After, say: stop with the error in hand rather than make a try that
        can only time out.
        """
        return state.upcoming_sleep >= self._left(state)

    def _policy(self, budget: CallBudget, retried: list[Exception]) -> dict[str, Any]:
        def remember(state: RetryCallState) -> None:  # called before the wait for a retry
            error = state.outcome.exception() if state.outcome else None
            if isinstance(error, Exception):
                retried.append(error)

        def worth_retrying(exc: BaseException) -> bool:
            if isinstance(_transport_error(exc), DeadlineReached):
                return False  # no time is left for another try
            return is_transient(exc) and not budget.stream_started

        return {
            "stop": stop_any(
                stop_after_attempt(self.options.max_tries),
                stop_after_delay(self.options.deadline),
                _NoTimeForAnotherTry(self),
            ),
            "wait": self._wait,
            "before_sleep": remember,
            "retry": retry_if_exception(worth_retrying),
            "reraise": True,
        }

    async def retrying(self, call: Callable[[], Awaitable[T]]) -> T:
        """Retry transient faults within the tries and the deadline; typed errors at the end.

        The deadline bounds the responses too, not only the waits between tries; a streamed
        answer that broke after it started is not retried (its tokens were handed on).
        """
        tries = 0
        retried: list[Exception] = []  # each retried try's error, oldest first
        with call_budget(self.options.deadline) as budget:
            try:
                async for attempt in AsyncRetrying(sleep=pause, **self._policy(budget, retried)):
                    with attempt:
                        tries += 1
                        return await call()
            except Exception as exc:
                if isinstance(_transport_error(exc), DeadlineReached) and retried:
                    # the last try only ran out of the time the earlier ones used: their fault
                    # is the cause worth naming
                    deadline = f"{self.options.deadline:g} s"
                    note = f", the last cut short by the call's deadline ({deadline})"
                    raise self.to_backend_error(retried[-1], tries=tries, note=note) from exc
                started = budget.stream_started and is_transient(exc)
                note = ", in a streamed answer already under way (not retried)" if started else ""
                raise self.to_backend_error(exc, tries=tries, note=note) from exc
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
            limit = min(self.options.timeout, self.options.deadline)
            per_loop[name] = self._chat_model(name, http_async_client=bounded_async_client(limit))
        return per_loop[name]

    def to_backend_error(self, exc: Exception, tries: int = 1, note: str = "") -> BackendError:
        """Map openai's (and httpx's) exceptions onto ours, with status and the start of the body.

        The API key is masked wherever it would show: some servers quote it in their error.
        """
        if isinstance(exc, BackendError):
            return exc
        where = f"{self.name} at {self.options.base_url}"
        after = f" after {tries} tr{'y' if tries == 1 else 'ies'}{note}"
        if isinstance(exc, openai.APITimeoutError | httpx.TimeoutException):
            return BackendTimeoutError(f"{where} timed out{after}{self._cause(exc)}")
        if isinstance(exc, openai.APIConnectionError | httpx.TransportError):
            refused = isinstance(_transport_error(exc), httpx.ConnectError)
            how = "unreachable" if refused else "connection broke"
            return BackendUnavailableError(f"{where} {how}{after}{self._cause(exc)}")
        if isinstance(exc, openai.APIStatusError):
            body = self._shown(_body_text(exc))
            return BackendError(
                f"{where} answered an error{after}", status=exc.status_code, body=body
            )
        if isinstance(exc, openai.APIResponseValidationError):
            return BackendError(
                f"{where} sent a malformed response{after}",
                status=exc.status_code,
                body=self._shown(_body_text(exc)),
            )
        return BackendError(
            f"{where} call failed{after}: {type(exc).__name__}: {self._shown(str(exc))}"
        )

    def _cause(self, exc: Exception) -> str:
        """``: <what httpx said>``, the transport's own words, which name the fault."""
        return f": {self._shown(_own_words(_transport_error(exc) or exc))}"

    def _shown(self, text: str) -> str:
        """Server or client text as it may be shown: without the API key."""
        return redact(text, [self.options.api_key.get_secret_value()])


# A number of each kind, digits bounded so a confused model stops: every digit it may write is
# a decode step on vLLM (no jump-forward), and a proposal's values need no sign, floats one
# integer digit and integers six (every hard limit is >= 0, floats under 10, integers 10**6).
_NUMBER_REGEX = {"float": r"[0-9](\.[0-9]{1,4})?", "int": r"[0-9]{1,6}"}


def object_regex(keys: Mapping[str, str]) -> str:
    """A regex for the compact JSON object with exactly these keys, in order, and numbers."""
    fields = ",".join(f'"{key}":{_NUMBER_REGEX[kind]}' for key, kind in keys.items())
    return "\\{" + fields + "\\}"


def _transport_error(exc: BaseException) -> httpx.HTTPError | None:
    """The httpx error under openai's and LangChain's wrappers (``Connection error.``), if any."""
    seen: BaseException | None = exc
    for _ in range(6):  # a short chain: LangChain's error, openai's, httpx's
        if seen is None or isinstance(seen, httpx.HTTPError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _own_words(error: BaseException) -> str:
    """The error's message; for a silent one (httpx's async errors), its name and what is under."""
    if str(error) or isinstance(error, httpx.TimeoutException):  # under a timeout: a cancellation
        return str(error) or type(error).__name__
    under = error.__cause__ or error.__context__
    for _ in range(4):  # a short chain: anyio's error, the OS error
        if under is None or str(under):
            break
        under = under.__cause__ or under.__context__
    if under is None:
        return type(error).__name__
    return f"{type(error).__name__} ({type(under).__name__}: {under})"


def _body_text(exc: openai.APIStatusError | openai.APIResponseValidationError) -> str:
    try:
        return exc.response.text
    except Exception:  # a streamed body cannot be read twice
        return str(exc.body or "")


def create_vllm(options: Mapping[str, Any]) -> OpenAICompatibleBackend:
    """Registry factory for a vLLM endpoint."""
    return OpenAICompatibleBackend(EndpointOptions(**{"flavor": "vllm", **options}))


def create_llamacpp_server(options: Mapping[str, Any]) -> OpenAICompatibleBackend:
    """Registry factory for llama.cpp's OpenAI-compatible server."""
    return OpenAICompatibleBackend(EndpointOptions(**{"flavor": "llama.cpp", **options}))


def create_openai(options: Mapping[str, Any]) -> OpenAICompatibleBackend:
    """Registry factory for OpenAI's API (or a server that takes exactly its arguments)."""
    return OpenAICompatibleBackend(EndpointOptions(**{"flavor": "openai", **options}))
