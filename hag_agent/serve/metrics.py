"""The server's Prometheus metrics, in a registry of each app's own (so two apps never mix).

Requests by endpoint and status, their latency, attempts per turn, the proposal's latency,
fallbacks (a decision replaced by its rule or prior), tokens by call, and the values chosen for
each task kind. With several worker processes (``PROMETHEUS_MULTIPROC_DIR`` set before
prometheus_client is imported), every process writes its values to that directory and the
exposition adds up all of them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from hag_agent.hyperparameters import HYPERPARAM_KEYS

_VALUE_BUCKETS: dict[str, tuple[float, ...]] = {
    "temperature": (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.1, 1.5, 2.0),
    "top_p": (0.1, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0),
    "top_k": (0, 1, 10, 20, 40, 50, 100, 200),
    "min_p": (0.0, 0.01, 0.05, 0.1, 0.2, 0.5),
    "repetition_penalty": (1.0, 1.05, 1.1, 1.2, 1.3, 1.5, 2.0),
    "max_tokens": (16, 32, 64, 128, 256, 512, 1024, 2048),
}

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus_client's multiprocess mode: the directory every worker writes its values to."""


class ServerMetrics:
    """Every metric of one server."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "hag_requests", "Requests by endpoint and status.", ["endpoint", "status"], registry=r
        )
        self.latency = Histogram(
            "hag_request_seconds", "Request latency, to the last byte.", ["endpoint"], registry=r
        )
        self.in_flight = Gauge(
            "hag_requests_in_flight",
            "Chat requests running.",
            registry=r,
            multiprocess_mode="livesum",  # the live workers' requests, added up
        )
        self.attempts = Histogram(
            "hag_attempts", "Attempts per turn.", buckets=(1, 2, 3, 4, 6, 11), registry=r
        )
        self.proposal = Histogram(
            "hag_proposal_seconds", "Wall time of the propose node.", registry=r
        )
        self.fallbacks = Counter(
            "hag_fallbacks", "Decisions replaced by their fallback, by node.", ["node"], registry=r
        )
        self.tokens = Counter(
            "hag_tokens", "Tokens by call and kind.", ["call", "kind"], registry=r
        )
        self.values = {
            key: Histogram(
                f"hag_chosen_{key}",
                f"The answer's {key}, by task kind.",
                ["task"],
                buckets=buckets,
                registry=r,
            )
            for key, buckets in _VALUE_BUCKETS.items()
        }

    def request_done(self, endpoint: str, status: int, seconds: float) -> None:
        """Count one finished request."""
        self.requests.labels(endpoint, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)

    def turn_done(
        self,
        result: Mapping[str, Any],
        node_seconds: Mapping[str, float],
        usage: Mapping[str, Any],
    ) -> None:
        """Record what one finished turn decided."""
        attempts = result.get("attempts") or []
        self.attempts.observe(len(attempts))
        if "propose" in node_seconds:
            self.proposal.observe(node_seconds["propose"])
        for event in result.get("trace") or []:
            if (event.get("data") or {}).get("fallback"):
                self.fallbacks.labels(str(event.get("node"))).inc()
        task = str(result.get("task"))
        for key, value in (result.get("params") or {}).items():
            if key in HYPERPARAM_KEYS:
                self.values[key].labels(task).observe(float(value))
        for attempt in usage.get("attempts") or []:
            self.tokens.labels("generate", "prompt").inc(attempt["prompt_tokens"])
            self.tokens.labels("generate", "completion").inc(attempt["completion_tokens"])
        for call, tokens in (usage.get("decisions") or {}).items():
            self.tokens.labels(call, "prompt").inc(tokens["prompt_tokens"])
            self.tokens.labels(call, "completion").inc(tokens["completion_tokens"])

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format (every worker's, added up, when several)."""
        directory = os.environ.get(MULTIPROCESS_DIR_VARIABLE)
        if not directory:
            return generate_latest(self.registry)
        every_worker = CollectorRegistry()
        MultiProcessCollector(every_worker, path=directory)  # type: ignore[no-untyped-call]
        return generate_latest(every_worker)


__all__ = ["CONTENT_TYPE", "MULTIPROCESS_DIR_VARIABLE", "ServerMetrics"]
