"""Tool calls for a model with no tool-call format of its own, by llama.cpp's JSON grammar.

The tools are described in a system message, and the reply is held by a grammar to one JSON
object: ``{"tool": NAME, "arguments": {...}}`` (one per bound tool, its arguments held to the
tool's parameter schema) or, where the caller lets the model choose, ``{"answer": TEXT}``. The
reply becomes an `AIMessage` with a tool call or with the answer text; a reply that does not
parse (cut off at ``max_tokens``) is an invalid tool call, which HAG's critique sends back.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, SystemMessage

_FORCED = frozenset({"any", "required"})


def _functions(tools: Sequence[Mapping[str, Any]], tool_choice: Any) -> list[Mapping[str, Any]]:
    """The OpenAI-format tools' functions the reply may call, as ``tool_choice`` allows."""
    functions = [tool.get("function", tool) for tool in tools]
    chosen = tool_choice.get("function", {}).get("name") if isinstance(tool_choice, dict) else None
    if isinstance(tool_choice, str) and tool_choice not in _FORCED | {"auto", "none"}:
        chosen = tool_choice
    return [f for f in functions if f.get("name") == chosen] if chosen else functions


def answer_may_be_text(tool_choice: Any) -> bool:
    """Whether the reply may answer in text rather than call a tool."""
    return tool_choice in (None, "auto", False)


def reply_schema(tools: Sequence[Mapping[str, Any]], tool_choice: Any) -> dict[str, Any]:
    """The JSON schema of a reply: a call of one of the tools, or (when allowed) an answer."""
    options: list[dict[str, Any]] = [
        {
            "type": "object",
            "properties": {
                "tool": {"const": function["name"]},
                "arguments": function.get("parameters") or {"type": "object"},
            },
            "required": ["tool", "arguments"],
        }
        for function in _functions(tools, tool_choice)
    ]
    if answer_may_be_text(tool_choice):
        options.append(
            {
                "type": "object",
                "properties": {"answer": {"type": "string"}},
                "required": ["answer"],
            }
        )
    return {"anyOf": options}


def with_tools_described(
    messages: Sequence[BaseMessage], tools: Sequence[Mapping[str, Any]], tool_choice: Any
) -> list[BaseMessage]:
    """The conversation with a system message that describes the tools and the reply format."""
    lines = ["You can call these tools:"]
    for function in _functions(tools, tool_choice):
        parameters = json.dumps(function.get("parameters", {}).get("properties", {}))
        lines.append(f"- {function['name']}: {function.get('description', '')} {parameters}")
    lines.append('To call a tool, reply {"tool": NAME, "arguments": {...}}.')
    if answer_may_be_text(tool_choice):
        lines.append('To answer without a tool, reply {"answer": TEXT}.')
    return [SystemMessage("\n".join(lines)), *messages]


def reply_message(text: str, metadata: Mapping[str, Any]) -> AIMessage:
    """The reply as a message: a tool call, the answer's text, or an invalid tool call."""
    try:
        reply = json.loads(text)
        if not isinstance(reply, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        invalid = {"type": "invalid_tool_call", "name": None, "args": text, "id": None}
        return AIMessage(
            content="",
            invalid_tool_calls=[{**invalid, "error": f"unreadable reply: {exc}"}],
            response_metadata=dict(metadata),
        )
    if "tool" in reply:
        call = {"name": str(reply["tool"]), "args": reply.get("arguments") or {}}
        call_id = f"call_{uuid.uuid4().hex[:12]}"
        return AIMessage(
            content="",
            tool_calls=[{**call, "id": call_id, "type": "tool_call"}],
            response_metadata=dict(metadata),
        )
    return AIMessage(content=str(reply.get("answer", "")), response_metadata=dict(metadata))


def tool_history_text(message: BaseMessage) -> str | None:
    """How an earlier tool call or tool result reads in the prompt (None: a plain message)."""
    calls = getattr(message, "tool_calls", None)
    if message.type == "ai" and calls and not message.text:
        return json.dumps({"tool": calls[0]["name"], "arguments": calls[0]["args"]})
    if message.type == "tool":
        name = getattr(message, "name", None) or "the tool"
        return f"{name} returned: {message.text}"
    return None


__all__ = [
    "answer_may_be_text",
    "reply_message",
    "reply_schema",
    "tool_history_text",
    "with_tools_described",
]
