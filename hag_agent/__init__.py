"""hag-agent: Hyperparameter Aware Generation as a LangGraph agent.

The model first proposes its own decoding settings for the query, then answers under them; a
critique can send it back with adjusted settings. Every decision is validated, bounded, recorded.

This package's top level is the public API of the core (`HAGRunnable`, `ChatHAG`, the graph,
settings, contracts, errors, the backend and proposer interfaces). Its layers, bottom to top:
contracts and policy; data formats and metrics; backends; the core; plug-ins (proposers, learned
head); the search engine; jobs (evaluation, training); front ends (cli, chat, visualization,
testing, dev). A module imports only from its own layer or below (``pyproject.toml``'s
import-linter contracts), and importing this package loads no optional extra.
"""

from hag_agent.backends import Backend, Capabilities, OutputConstraint, register_backend
from hag_agent.backends.chat_model import ChatModelBackend
from hag_agent.chat_model import ChatHAG
from hag_agent.context import HAGContext, resolve_context
from hag_agent.critique import Critique, Direction
from hag_agent.errors import (
    BackendError,
    BackendTimeoutError,
    BackendUnavailableError,
    ConfigurationError,
    EmbeddingsUnsupportedError,
    HAGError,
    HAGInputError,
    HeadMismatchError,
    InvalidSettingsError,
    LearnedHeadError,
    WorkerLostError,
)
from hag_agent.graph import build_graph, graph
from hag_agent.hyperparameters import HYPERPARAM_KEYS, DecodingBounds, HyperParams, ParamSource
from hag_agent.proposal import parse_proposal
from hag_agent.proposing import Proposal, ProposalRequest, Proposer, register_proposer
from hag_agent.runnable import HAGResult, HAGRunnable
from hag_agent.state import Attempt
from hag_agent.tasks import TASK_PRIORS, TaskKind

__version__ = "0.1.0"

__all__ = [
    "HYPERPARAM_KEYS",
    "TASK_PRIORS",
    "Attempt",
    "Backend",
    "BackendError",
    "BackendTimeoutError",
    "BackendUnavailableError",
    "Capabilities",
    "ChatHAG",
    "ChatModelBackend",
    "ConfigurationError",
    "Critique",
    "DecodingBounds",
    "Direction",
    "EmbeddingsUnsupportedError",
    "HAGContext",
    "HAGError",
    "HAGInputError",
    "HAGResult",
    "HAGRunnable",
    "HeadMismatchError",
    "HyperParams",
    "InvalidSettingsError",
    "LearnedHeadError",
    "OutputConstraint",
    "ParamSource",
    "Proposal",
    "ProposalRequest",
    "Proposer",
    "TaskKind",
    "WorkerLostError",
    "__version__",
    "build_graph",
    "graph",
    "parse_proposal",
    "register_backend",
    "register_proposer",
    "resolve_context",
]
