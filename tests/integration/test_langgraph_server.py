"""LangGraph's own server: ``langgraph dev`` on graphs/langgraph.json, offline, driven by the
``langgraph-sdk`` client (a thread, two turns, run settings as context), so that deployment
path cannot rot. The model is the fault server (an instant OpenAI-compatible upstream)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hag_agent.dev.server_process import ServerProcess, free_port, start_server
from hag_agent.testing.extras import skip_reason

from .fault_server import FaultServer
from .sessions_servers import echo

GRAPHS = Path(__file__).resolve().parents[2] / "graphs"
OFFLINE = {
    "LANGGRAPH_CLI_NO_ANALYTICS": "1",  # no usage report from the CLI
    "LANGSMITH_TRACING": "false",  # no traces sent to LangSmith
    "LANGCHAIN_TRACING_V2": "false",
    "LANGSMITH_API_KEY": "",
    "LANGGRAPH_AUTH_TYPE": "noop",
}


@pytest.fixture(scope="module")
def langgraph_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    cli = Path(sys.executable).with_name("langgraph")
    if not cli.exists():
        pytest.skip(skip_reason("langgraph-server", ["langgraph-cli[inmem]"]))
    port = free_port()
    # Run where langgraph.json is: the graph's path in it is relative to the working directory.
    command = [str(cli), "dev", "--config", "langgraph.json", "--no-browser"]
    command += ["--no-reload", "--host", "127.0.0.1", "--port", str(port)]
    log = tmp_path_factory.mktemp("langgraph") / "langgraph-dev.log"
    server = start_server(
        command,
        port=port,
        health_path="/ok",
        deadline=120,
        log_path=log,
        env=OFFLINE,
        cwd=GRAPHS,
    )
    yield server
    server.stop()


def test_a_thread_of_two_turns_through_the_sdk(
    langgraph_dev: ServerProcess, fault_server: FaultServer
) -> None:
    from langgraph_sdk import get_sync_client

    fault_server.reply = echo
    context = {
        "backend": "vllm",
        "backend_options": {"base_url": fault_server.base_url, "model": "m"},
        "proposer": "prior",
        "critique": False,
        "params": {"temperature": 0.25},
    }
    client = get_sync_client(url=langgraph_dev.base_url)
    (assistant,) = client.assistants.search(graph_id="hag-agent")
    thread = client.threads.create()
    states = []
    for text in ("one", "two"):
        states.append(
            client.runs.wait(
                thread["thread_id"],
                assistant["assistant_id"],
                input={"messages": [{"role": "user", "content": text}]},
                context=context,
            )
        )
    first, second = states
    assert isinstance(first, dict) and isinstance(second, dict)
    assert first["answer"].strip() == "one (seen 1)"
    assert second["answer"].strip() == "two (seen 3)"  # the thread kept the first turn
    assert [m["type"] for m in second["messages"]] == ["human", "ai", "human", "ai"]
    # the run settings reached the model: the pinned temperature, the upstream's model name
    sent = fault_server.requests[-1].body
    assert sent["model"] == "m" and sent["temperature"] == 0.25
    history = client.threads.get_history(thread["thread_id"], limit=100)
    assert len(history) > 2  # the server checkpointed every step of both turns
