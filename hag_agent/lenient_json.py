"""Find one JSON object in model text that is almost, but not quite, JSON.

Small models wrap JSON in prose or code fences, use single quotes, leave trailing commas, or
quote numbers. Strict parsing comes first; `json_repair` handles the rest.
"""

from __future__ import annotations

import json
import re
from typing import Any

import json_repair

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)


class NoJSONObjectError(ValueError):
    """The text holds no recognisable JSON object."""


def extract_json_object(text: str) -> dict[str, Any]:
    """Return the first JSON object found in ``text``.

    Args:
        text: Raw model output.

    Returns:
        The parsed object.

    Raises:
        NoJSONObjectError: When no object can be recovered.
    """
    if not text or not text.strip():
        raise NoJSONObjectError("empty output")
    candidates = [m.group(1) for m in _FENCE.finditer(text)]
    start = text.find("{")
    if start >= 0:
        end = text.rfind("}")
        candidates.append(text[start : end + 1] if end > start else text[start:])
    candidates.append(text)
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except (ValueError, RecursionError):  # RecursionError: nesting deeper than the stack
            continue
        if isinstance(value, dict):
            return value
    for candidate in candidates:
        if "{" not in candidate:
            continue
        try:
            repaired = json_repair.repair_json(candidate, return_objects=True)
        except (ValueError, RecursionError):  # json_repair gives up on very deep nesting
            continue
        if isinstance(repaired, dict) and repaired:
            return repaired
        if isinstance(repaired, list):
            for item in repaired:
                if isinstance(item, dict) and item:
                    return item
    raise NoJSONObjectError(f"no JSON object in {text[:80]!r}")
