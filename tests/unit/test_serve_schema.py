"""Property-based requests from the server's own OpenAPI schema (Schemathesis): never a 5xx."""

import tempfile

import pytest

pytestmark = pytest.mark.needs_extra("dev")
schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, settings  # noqa: E402

from hag_agent.serve.app import create_app  # noqa: E402
from hag_agent.serve.settings import ServerSettings  # noqa: E402
from hag_agent.testing import ScriptedChatModel  # noqa: E402

SESSIONS = tempfile.TemporaryDirectory(prefix="hag-schema-sessions-")  # removed at exit
APP = create_app(
    ServerSettings(
        run_settings={"proposer": "prior", "max_retries": 1},
        sessions=SESSIONS.name,  # where a generated hag.session is kept
    ),
    model=ScriptedChatModel(default="A short and plain answer."),
)
SCHEMA = schemathesis.openapi.from_asgi("/openapi.json", APP)


@SCHEMA.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_request_gets_a_server_error(case: "schemathesis.Case") -> None:
    response = case.call()
    assert response.status_code < 500, response.text
    if response.status_code >= 400 and case.path.startswith("/v1"):
        error = response.json()["error"]  # OpenAI's error format, whatever went wrong
        assert error["message"] and error["type"]
