"""How a chat completions request becomes a HAG run: the conversation, the settings, the pins.

The conversation goes to the graph as it is (system and developer prompts, earlier turns,
names); its last message must be the user's, the prompt HAG answers. Sampling values the client
sent are pinned (the client's word wins over any proposal) unless the server ignores them;
``hag.params`` pins win over both. Every field HAG cannot honour is refused here, naming it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AnyMessage, convert_to_messages

from hag_agent.serve.api_errors import APIError, bad_request
from hag_agent.serve.protocol import ChatCompletionRequest, ChatMessage
from hag_agent.serve.settings import ServerSettings

SAMPLING_FIELDS: dict[str, str] = {
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "min_p": "min_p",
    "repetition_penalty": "repetition_penalty",
    "max_completion_tokens": "max_tokens",
    "max_tokens": "max_tokens",
}
"""Request fields that are sampling values, and the hyperparameter each one is."""

_NEUTRAL: dict[str, tuple[object, ...]] = {
    "n": (None, 1),
    "logprobs": (None, False),
    "top_logprobs": (None, 0),
    "presence_penalty": (None, 0, 0.0),
    "frequency_penalty": (None, 0, 0.0),
    "logit_bias": (None, {}),
    "stop": (None, [], ""),
    "tools": (None, []),
    "tool_choice": (None, "none", "auto"),
    "functions": (None, []),
    "function_call": (None, "none", "auto"),
    "audio": (None,),
    "prediction": (None,),
    "reasoning_effort": (None,),
    "verbosity": (None,),
    "web_search_options": (None,),
}
"""Fields HAG does not apply, and the values of theirs that change nothing (accepted)."""

_WHY_REFUSED = {
    "n": "one answer per request: HAG chooses one configuration and one attempt",
    "logprobs": "HAG does not return token logprobs",
    "top_logprobs": "HAG does not return token logprobs",
    "tools": "tool calling is not supported through HAG",
    "tool_choice": "tool calling is not supported through HAG",
    "functions": "function calling is not supported through HAG",
    "function_call": "function calling is not supported through HAG",
}


@dataclass
class RunPlan:
    """One request, ready to run."""

    messages: list[AnyMessage]
    """The conversation as LangChain messages."""
    settings: dict[str, Any]
    """Per-call `HAGContext` settings (over the server's run settings)."""
    param_fields: dict[str, str] = field(default_factory=dict)
    """For each pinned hyperparameter, the request field that pinned it (for error messages)."""
    client_pins: frozenset[str] = frozenset()
    """Hyperparameters pinned by the client's sampling fields."""
    ignored: list[str] = field(default_factory=list)
    """Sampling fields the server ignored (``--client-params ignore``)."""
    session: str | None = None
    """The session the conversation continues (``hag.session``), if any."""


def plan_run(request: ChatCompletionRequest, server: ServerSettings) -> RunPlan:
    """The run a request stands for.

    Raises:
        APIError: 400 naming the field HAG cannot honour, 404 for a model not served.
    """
    refuse_unsupported(request)
    settings = request.hag.run_settings()
    settings["backend_options"] = model_options(request.model, server)
    if request.seed is not None:
        settings["seed"] = request.seed
    pins, fields, ignored = client_pins(request, server)
    hag_pins = dict(request.hag.params)
    fields.update({key: f"hag.params.{key}" for key in hag_pins})
    if pins or hag_pins:
        settings["params"] = {**pins, **hag_pins}
    return RunPlan(
        messages=to_messages(request.messages),
        settings=settings,
        param_fields=fields,
        client_pins=frozenset(pins) - frozenset(hag_pins),
        ignored=ignored,
        session=request.hag.session,
    )


def model_options(model: str, server: ServerSettings) -> dict[str, Any]:
    """Backend options for the model a request names (none for the default model).

    Raises:
        APIError: 404 when the server does not serve that model.
    """
    served = server.served_models()
    if model == served[0]:
        return {}
    if model in served:
        return {"model": model}
    raise APIError(
        404,
        f"the model {model!r} is not served here; served: {', '.join(served)}",
        param="model",
        code="model_not_found",
    )


def client_pins(
    request: ChatCompletionRequest, server: ServerSettings
) -> tuple[dict[str, float], dict[str, str], list[str]]:
    """The client's sampling values as pins, the field each came from, and those ignored.

    Raises:
        APIError: When ``max_tokens`` and ``max_completion_tokens`` disagree.
    """
    given = {name: getattr(request, name) for name in SAMPLING_FIELDS}
    given = {name: value for name, value in given.items() if value is not None}
    if server.client_params == "ignore":
        return {}, {}, sorted(given)
    budgets = {given.get("max_tokens"), given.get("max_completion_tokens")} - {None}
    if len(budgets) > 1:
        raise bad_request(
            "max_tokens and max_completion_tokens disagree: give one", "max_completion_tokens"
        )
    pins: dict[str, float] = {}
    fields: dict[str, str] = {}
    for name, value in given.items():
        pins[SAMPLING_FIELDS[name]] = float(value)
        fields[SAMPLING_FIELDS[name]] = name
    return pins, fields, []


def refuse_unsupported(request: ChatCompletionRequest) -> None:
    """Refuse any field HAG does not apply at a value that would change the answer.

    Raises:
        APIError: 400 naming the field.
    """
    for name, neutral in _NEUTRAL.items():
        value = getattr(request, name)
        if value not in neutral:
            why = _WHY_REFUSED.get(name, "HAG does not apply it")
            raise bad_request(f"{name}={value!r} is not supported: {why}", name, "unsupported")
    fmt = request.response_format
    if fmt is not None and fmt.get("type") != "text":
        raise bad_request(
            "response_format other than text is not supported: HAG chooses the decoding of "
            "free text",
            "response_format",
            "unsupported",
        )
    if request.modalities is not None and set(request.modalities) - {"text"}:
        raise bad_request("only the text modality is supported", "modalities", "unsupported")


def to_messages(messages: list[ChatMessage]) -> list[AnyMessage]:
    """The conversation as LangChain messages, each as it came.

    Raises:
        APIError: For tool messages or calls, non-text content, or a last message that is not
            the user's.
    """
    plain: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if message.role in ("tool", "function") or message.tool_calls or message.function_call:
            raise bad_request(
                "tool and function messages are not supported through HAG",
                f"{where}.role",
                "unsupported",
            )
        item: dict[str, Any] = {"role": message.role, "content": _content(message, where)}
        if message.name:
            item["name"] = message.name
        plain.append(item)
    if messages[-1].role != "user":
        raise bad_request(
            "the last message must be the user's: HAG answers the user's last message",
            f"messages[{len(messages) - 1}].role",
        )
    try:
        return convert_to_messages(plain)  # type: ignore[return-value]
    except (ValueError, TypeError, NotImplementedError) as exc:
        raise bad_request(f"cannot read the messages: {exc}", "messages") from None


def _content(message: ChatMessage, where: str) -> str | list[dict[str, Any]]:
    content = message.content
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    for j, part in enumerate(content):
        if part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise bad_request(
                f"content part of type {part.get('type')!r} is not supported: text only",
                f"{where}.content[{j}].type",
                "unsupported",
            )
    return [{"type": "text", "text": part["text"]} for part in content]


__all__ = ["SAMPLING_FIELDS", "RunPlan", "client_pins", "plan_run", "to_messages"]
