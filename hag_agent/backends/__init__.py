"""Model backends: one narrow interface, found by name.

`Backend` is the interface (three coroutines and one sync shim), `ChatModelBackend` adapts any
LangChain chat model, the built-ins are the embedded llama.cpp engine and OpenAI-compatible
servers in their `ServerProfile`; the registry finds backends by name (entry points for third
parties). This package imports only the contracts below it (errors, hyperparameters,
lenient_json, assets, plugins, training_scope), never the core (context, state, nodes, graph) or
anything above.
"""

from hag_agent.backends.base import (
    Backend,
    Capabilities,
    Decision,
    DecisionRequest,
    Embedding,
    Generation,
    GenerationRequest,
    OutputConstraint,
    ProposerChoice,
)
from hag_agent.backends.chat_model import ChatModelBackend, as_backend
from hag_agent.backends.registry import (
    BackendFactory,
    backend_names,
    create_backend,
    register_backend,
)

__all__ = [
    "Backend",
    "BackendFactory",
    "Capabilities",
    "ChatModelBackend",
    "Decision",
    "DecisionRequest",
    "Embedding",
    "Generation",
    "GenerationRequest",
    "OutputConstraint",
    "ProposerChoice",
    "as_backend",
    "backend_names",
    "create_backend",
    "register_backend",
]
