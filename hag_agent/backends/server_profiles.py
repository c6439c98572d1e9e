"""The dialects of OpenAI-compatible servers, as data: vLLM, llama.cpp's server, plain OpenAI.

A `ServerProfile` says what a server accepts and where: its capabilities (the penalty's name,
how structured output is requested, whether logprobs, seeds, reproducibility and validation
apply), where ``max_tokens`` goes, and whether a regex can constrain a decode. The endpoint
backend reads the profile; it never branches on the server's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from hag_agent.backends.base import Capabilities
from hag_agent.hyperparameters import HyperParams

Flavor = Literal["vllm", "llama.cpp", "openai"]


@dataclass(frozen=True)
class ServerProfile:
    """What one kind of OpenAI-compatible server accepts, and where."""

    backend_name: str
    """The backend's name for this server (in errors and traces)."""
    capabilities: Capabilities
    """What it supports; ``structured_output`` says how decisions are requested."""
    max_tokens_in_body: bool = False
    """``max_tokens`` goes in the JSON body: ChatOpenAI sends its own as
    ``max_completion_tokens``, which llama.cpp's server ignores."""
    regex_decoding: bool = False
    """``structured_outputs.regex`` constrains a decode (vLLM)."""

    def sampler_body(self, params: HyperParams) -> dict[str, Any]:
        """The sampling values outside the OpenAI API that the server takes in the JSON body."""
        body: dict[str, Any] = {}
        if self.capabilities.top_k:
            body["top_k"] = params.top_k
        if self.capabilities.min_p:
            body["min_p"] = params.min_p
        if self.capabilities.repetition_penalty_name:
            body[self.capabilities.repetition_penalty_name] = params.repetition_penalty
        if self.max_tokens_in_body:
            body["max_tokens"] = params.max_tokens
        return body

    def response_format(self, schema: type[BaseModel]) -> dict[str, Any]:
        """The body's ``response_format`` for a decision of ``schema`` (empty: the prompt only)."""
        # No keys beyond the schema's: a tighter grammar leaves a small model less to wander in.
        json_schema = {**schema.model_json_schema(), "additionalProperties": False}
        return self.json_response_format(json_schema, schema.__name__)

    def json_response_format(self, json_schema: dict[str, Any], name: str) -> dict[str, Any]:
        """The body's ``response_format`` for a JSON schema (empty: the prompt only)."""
        how = self.capabilities.structured_output
        if how == "json_object":
            return {"response_format": {"type": "json_object", "schema": json_schema}}
        if how == "json_schema":
            named = {"name": name, "schema": json_schema}
            return {"response_format": {"type": "json_schema", "json_schema": named}}
        return {}


OPENAI_API = Capabilities(structured_output="json_schema", seed=True, validates_params=True)
"""What the OpenAI API itself offers: json_schema decisions, a seed, values checked (400).

Not in it: top_k, min_p and a repetition penalty (OpenAI rejects them), logprobs from every
model (reasoning models reject the argument), reproducible results."""

LLAMA_CPP = Capabilities(
    structured_output="json_object",
    seed=True,
    top_k=True,
    min_p=True,
    repetition_penalty_name="repeat_penalty",
)
"""What llama.cpp's sampler takes, in process or behind its server: JSON mode with a schema
(its ``json_schema`` response format is ignored), and its own name for the penalty."""

VLLM = ServerProfile(
    backend_name="vllm",
    capabilities=OPENAI_API.model_copy(
        update={
            "logprobs": True,
            "reproducible": True,
            "top_k": True,
            "min_p": True,
            "repetition_penalty_name": "repetition_penalty",
        }
    ),
    regex_decoding=True,
)

# Beyond LLAMA_CPP, nothing: the server gives logprobs only when started with logits_all; it
# reuses its prompt cache across requests and llama.cpp's results depend slightly on how a
# prompt was split into batches, so it is not reproducible; it answers a rejected value with
# 500, not 400, so it does not validate.
LLAMA_CPP_SERVER = ServerProfile(
    backend_name="llamacpp-server", capabilities=LLAMA_CPP, max_tokens_in_body=True
)

OPENAI = ServerProfile(backend_name="openai", capabilities=OPENAI_API)

PROFILES: dict[Flavor, ServerProfile] = {
    "vllm": VLLM,
    "llama.cpp": LLAMA_CPP_SERVER,
    "openai": OPENAI,
}
"""The profile of each ``flavor`` (``HAG_FLAVOR``)."""
