"""``hag-agent serve``: HAG behind an OpenAI-compatible HTTP API (FastAPI on uvicorn).

Any client that speaks the chat completions protocol (the official SDKs, LangChain's
``ChatOpenAI``, evaluation harnesses) gets decoding settings chosen per request by switching
its base URL. One module per concept: the server's settings (`settings`), the protocol it
accepts (`protocol`) and the per-request HAG options (`hag_options`), how a request becomes a
run (`translation`), one turn of the graph with its tokens sorted by attempt (`turn`), usage
(`usage`), server-side conversations (`sessions`), the response bodies (`responses`), errors in
OpenAI's format (`api_errors`), the request guards (`auth`, `admission`, `body_limit`),
readiness (`readiness`), metrics (`metrics`) and the app that wires them (`app`).

A front end: it may import any layer below the command line; the command line imports it.
It never prints: ``hag-agent serve`` does.
"""

from hag_agent.serve.settings import ServerSettings

__all__ = ["ServerSettings"]
