"""The conformance suite against the embedded backend and llama.cpp's server."""

from __future__ import annotations

import pytest

from hag_agent.backends.embedded import EmbeddedBackend
from hag_agent.backends.openai_compatible import EndpointOptions, OpenAICompatibleBackend
from hag_agent.dev.server_process import ServerProcess
from hag_agent.testing.conformance import BackendConformance


class TestEmbeddedConformance(BackendConformance):
    @pytest.fixture
    def backend(self, embedded: EmbeddedBackend) -> EmbeddedBackend:
        return embedded


class TestLlamaCppServerConformance(BackendConformance):
    @pytest.fixture
    def backend(self, llamacpp_server: ServerProcess) -> OpenAICompatibleBackend:
        return OpenAICompatibleBackend(
            EndpointOptions(
                base_url=f"{llamacpp_server.base_url}/v1", model="smollm2", flavor="llama.cpp"
            )
        )
