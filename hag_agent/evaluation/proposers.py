"""Who chooses the decoding settings: the proposers the harness compares.

- ``default``: `DEFAULT_PARAMS` (decoder defaults), via proposer ``fixed``;
- ``random``: temperature, top_p, top_k and repetition_penalty drawn uniformly within the
  `DecodingBounds` (top_k off with probability 1/5, else a uniform integer in its range), min_p
  0 and the task prior's max_tokens; drawn from ``(seed, case id)`` only, so reproducible;
- ``prior``: the task prior (proposer ``prior``);
- ``self``: the model proposes its own settings (proposer ``self``: HAG);
- ``self-tuned``: the same, but the proposal comes from a fine-tuned proposer (``hag-agent train
  sft``): a served LoRA model on an endpoint (``proposer_model``), a GGUF LoRA on the embedded
  backend (``proposer_lora_path``); the base model still answers;
- ``learned``: the learned head (``hag-agent train head``) maps the prompt's embedding to params;
- ``oracle``: the best configuration per case from a search file (`hag_agent.data.search`).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, get_args

from hag_agent.data.search_records import read_records
from hag_agent.data.suites import SuiteCase
from hag_agent.errors import HAGInputError
from hag_agent.hyperparameters import DecodingBounds, HyperParams
from hag_agent.tasks import DEFAULT_PARAMS, TASK_PRIORS

ProposerName = Literal["default", "random", "prior", "self", "self-tuned", "learned", "oracle"]
PROPOSERS: tuple[str, ...] = get_args(ProposerName)
"""Every proposer the harness knows, in report order."""


def parse_proposers(value: str | Sequence[str]) -> list[ProposerName]:
    """Proposer names from ``"default,random,..."`` or a list, deduplicated, in given order.

    Raises:
        HAGInputError: For an unknown name (the message lists the valid ones) or none at all.
    """
    items = value.split(",") if isinstance(value, str) else list(value)
    names: list[ProposerName] = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        if item not in PROPOSERS:
            raise HAGInputError(
                f"unknown proposer {item!r}; valid proposers: {', '.join(PROPOSERS)}"
            )
        if item not in names:
            names.append(item)  # type: ignore[arg-type]  # checked against PROPOSERS above
    if not names:
        raise HAGInputError(f"no proposer given; valid proposers: {', '.join(PROPOSERS)}")
    return names


def random_params(case: SuiteCase, seed: int, bounds: DecodingBounds | None = None) -> HyperParams:
    """The ``random`` proposer's configuration for one case and seed (see the module docstring)."""
    bounds = bounds or DecodingBounds()
    rng = random.Random(f"hag-random:{seed}:{case.id}")

    def uniform(key: str) -> float:
        rng_range = getattr(bounds, key)
        return round(rng.uniform(rng_range.low, rng_range.high), 3)

    temperature = uniform("temperature")
    top_p = uniform("top_p")
    repetition_penalty = uniform("repetition_penalty")
    off = rng.random() < 0.2
    top_k = 0 if off else rng.randint(int(bounds.top_k.low), int(bounds.top_k.high))
    max_tokens = int(bounds.clamp_value("max_tokens", TASK_PRIORS[case.task].max_tokens) or 1)
    return HyperParams(
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        min_p=0.0,
        repetition_penalty=repetition_penalty,
        max_tokens=max_tokens,
    )


def oracle_params(
    search_file: str | Path,
    cases: Sequence[SuiteCase],
    *,
    warn: Callable[[str], None] | None = None,
) -> dict[str, HyperParams]:
    """The best configuration of each case from a search file.

    Raises:
        HAGInputError: When the file is missing or lacks a record for some case (listed).
    """
    path = Path(search_file)
    if not path.is_file():
        raise HAGInputError(f"no such search file: {path}")
    records = {r.id: r for r in read_records(path, warn=warn)}
    missing = [c.id for c in cases if c.id not in records]
    if missing:
        shown = ", ".join(missing[:10]) + (
            f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        )
        raise HAGInputError(
            f"search file {path} has no record for {len(missing)} of {len(cases)} case(s): "
            f"{shown}; run `hag-agent dataset search` on the same suite first"
        )
    return {c.id: records[c.id].best_params() for c in cases}


def proposer_settings(
    proposer: ProposerName,
    case: SuiteCase,
    seed: int,
    *,
    oracle: Mapping[str, HyperParams] | None = None,
    bounds: DecodingBounds | None = None,
    head_path: str | None = None,
) -> dict[str, Any]:
    """The `HAGContext` settings that make a run use one proposer's configuration.

    ``self-tuned`` is ``self`` here: the harness runs it on the backend with the tuned proposer.
    """
    if proposer == "default":
        return {"proposer": "fixed", "fixed_params": DEFAULT_PARAMS}
    if proposer == "random":
        return {"proposer": "fixed", "fixed_params": random_params(case, seed, bounds)}
    if proposer == "prior":
        return {"proposer": "prior"}
    if proposer in ("self", "self-tuned"):
        return {"proposer": "self"}
    if proposer == "learned":
        if head_path is None:
            raise HAGInputError("proposer learned needs a head file (--head)")
        return {"proposer": "learned", "head_path": head_path}
    if oracle is None or case.id not in oracle:
        raise HAGInputError(f"proposer oracle has no configuration for case {case.id!r}")
    return {"proposer": "fixed", "fixed_params": oracle[case.id]}


def case_ids_from(path: str | Path) -> set[str]:
    """The case ids in a JSONL file (a suite, search records or ``held_out.jsonl``).

    Raises:
        HAGInputError: The file is missing or names no id.
    """
    import json

    file = Path(path)
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise HAGInputError(f"cannot read {file}: {exc}") from None
    ids: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            raise HAGInputError(f"{file}:{number}: not JSON") from None
        value = item.get("id", item.get("case_id")) if isinstance(item, dict) else None
        if isinstance(value, str):
            ids.add(value)
    if not ids:
        raise HAGInputError(f"{file} names no case id (lines need an 'id' field)")
    return ids


__all__ = [
    "PROPOSERS",
    "ProposerName",
    "case_ids_from",
    "oracle_params",
    "parse_proposers",
    "proposer_settings",
    "random_params",
]
