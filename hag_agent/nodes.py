"""The graph's nodes: classify, propose, generate, critique, adjust; and the routing.

Each node is a generator of model calls (see `node_driver`). Nodes never raise on model
nonsense: they record a fallback. The run ends in critique or adjust, where `finish` makes the
best-scored attempt the answer.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import Any, cast

from langchain_core.messages import AIMessage, HumanMessage, InvalidToolCall, ToolCall
from langgraph.graph import END

from hag_agent.adjustment import adjust as compute_adjustment
from hag_agent.backend_choice import resolve_backend
from hag_agent.backends.base import Decision, Generation, SchemaT, message_text
from hag_agent.classification import TaskChoice, classify_by_rules
from hag_agent.context import HAGContext, check_pinned
from hag_agent.critique import (
    Critique,
    JudgeVerdict,
    combine,
    critique_structured,
    critique_tool_calls,
    measure_signals,
)
from hag_agent.errors import BackendError, HAGInputError
from hag_agent.hyperparameters import ParamSource
from hag_agent.node_driver import Call, CallResult, DecideCall, GenerateCall, Steps
from hag_agent.prompt_templates import render
from hag_agent.proposing import ProposalRequest, default_reason, proposer_for
from hag_agent.state import Attempt, HAGState, PlannedParams, TraceEvent
from hag_agent.tasks import TASK_DESCRIPTIONS, TASK_PRIORS, TaskKind


def decided(result: CallResult, schema: type[SchemaT]) -> tuple[SchemaT | None, str, str]:
    """A decision call's validated value (or None), its raw text, and why there is no value."""
    if isinstance(result, BackendError):
        return None, "", str(result)
    assert isinstance(result, Decision)
    value = result.value if isinstance(result.value, schema) else None
    return value, result.raw_text, result.error or ""


def _event(state: HAGState, node: str, message: str, **data: Any) -> list[TraceEvent]:
    return [*state.trace, TraceEvent(node=node, message=message, data=data)]


def last_human_text(messages: list[Any]) -> str:
    """The text of the last human message in a conversation."""
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            return message_text(message)
    return ""


def bound_tool_names(options: Mapping[str, Any]) -> frozenset[str] | None:
    """The names of the tools bound to the answer call, or None when they are not known.

    Tools come in OpenAI's format or as plain function schemas; None when none are bound or
    one's name cannot be read (names then go unchecked).
    """
    names: set[str] = set()
    for tool in options.get("tools") or ():
        function = tool.get("function", tool) if isinstance(tool, Mapping) else None
        name = function.get("name") if isinstance(function, Mapping) else None
        if not isinstance(name, str):
            return None
        names.add(name)
    return frozenset(names) if names else None


# -- classify --------------------------------------------------------------------------------


def classify_steps(state: HAGState, context: HAGContext) -> Steps:
    """Settle the task kind: pinned, rules, or the model (rules as fallback).

    Also starts a new turn: checks the input and pinned params, and clears the last turn's
    attempts and trace (the conversation itself is kept).
    """
    check_pinned(context)
    prompt = last_human_text(state.messages)
    if not prompt.strip():
        raise HAGInputError("the prompt is empty: give a non-blank human message")
    if len(prompt) > context.max_prompt_chars:
        raise HAGInputError(
            f"the prompt has {len(prompt)} characters, over max_prompt_chars="
            f"{context.max_prompt_chars}"
        )
    reset: dict[str, Any] = {
        "prompt": prompt,
        "attempts": [],
        "answer": "",
        "best_attempt": None,
        "stop_reason": "",
        "pending": None,
    }
    if context.task is not None:
        task, message = context.task, "pinned by the caller"
        data: dict[str, Any] = {}
    elif context.classifier == "rules":
        task, message = classify_by_rules(prompt)
        data = {}
    else:
        kinds = "\n".join(f"- {k.value}: {d}" for k, d in TASK_DESCRIPTIONS.items())
        result = yield DecideCall(
            "classify", render("classify", task_kinds=kinds, prompt=prompt), TaskChoice
        )
        choice, raw, why = decided(result, TaskChoice)
        if choice is not None:
            task = choice.task
            message = f"llm: {task.value} (confidence {choice.confidence:.2f})"
            data = {"raw": raw}
        else:
            task, rules_reason = classify_by_rules(prompt)
            message = f"llm answer unusable ({why}); fallback {rules_reason}"
            data = {"raw": raw, "fallback": True}
    return {
        **reset,
        "task": task,
        "trace": [TraceEvent(node="classify", message=message, data={"task": task.value, **data})],
    }


# -- propose ---------------------------------------------------------------------------------


def propose_steps(state: HAGState, context: HAGContext) -> Steps:
    """Choose the first configuration: the run's proposer's, with pins and bounds applied."""
    task = state.task or TaskKind.CHAT
    request = ProposalRequest(
        prompt=state.prompt,
        task=task,
        bounds=context.bounds,
        seed=context.seed,
        case_id=context.case_id,
        scope=resolve_backend(context).proposer_scope(),
    )
    proposer = proposer_for(context)
    proposal = yield from proposer.propose(request)
    values, sources = dict(proposal.values), dict(proposal.sources)
    clamps, data = list(proposal.clamps), dict(proposal.data)
    data["proposer"] = proposer.name
    if (reason := default_reason(context)) is not None:
        data["default_because"] = reason
    for key, value in context.params.items():
        values[key] = value
        sources[key] = ParamSource.PINNED
    params, more_clamps = context.bounds.clamp(values, sources, TASK_PRIORS[task])
    clamps.extend(more_clamps)
    planned = PlannedParams(params=params, sources=sources, clamps=clamps, reason=proposal.reason)
    if clamps:
        data["clamps"] = [c.model_dump(mode="json") for c in clamps]
    return {
        "pending": planned,
        "trace": _event(state, "propose", proposal.reason, params=params.model_dump(), **data),
    }


# -- generate --------------------------------------------------------------------------------


def generate_steps(state: HAGState, context: HAGContext) -> Steps:
    """Answer the conversation under the pending configuration and record the attempt."""
    planned = state.pending
    assert planned is not None, "propose or adjust sets the pending params"
    result = yield GenerateCall(list(state.messages), planned)
    attempt = Attempt(
        index=len(state.attempts),
        params=planned.params,
        sources=planned.sources,
        clamps=planned.clamps,
        reason=planned.reason,
    )
    if isinstance(result, BackendError):
        if not any(a.error is None for a in state.attempts):
            raise result  # nothing to fall back on: the caller gets the typed error
        attempt = attempt.model_copy(update={"error": str(result)})
        message = f"attempt {attempt.index} failed: {result}; keeping earlier attempts"
    else:
        assert isinstance(result, Generation)
        attempt = attempt.model_copy(
            update={
                "output": result.text,
                "finish_reason": result.finish_reason,
                "prompt_tokens": result.prompt_tokens,
                "completion_tokens": result.completion_tokens,
                "latency_s": result.latency_s,
                "mean_logprob": result.mean_logprob,
                "tool_calls": result.tool_calls,
                "invalid_tool_calls": result.invalid_tool_calls,
            }
        )
        message = (
            f"attempt {attempt.index}: {len(result.text)} chars, finish {result.finish_reason}"
        )
        if result.tool_calls or result.invalid_tool_calls:
            message += f", {len(result.tool_calls) + len(result.invalid_tool_calls)} tool calls"
    return {
        "attempts": [*state.attempts, attempt],
        "pending": None,
        "trace": _event(state, "generate", message, attempt=attempt.index),
    }


# -- critique --------------------------------------------------------------------------------


def critique_steps(state: HAGState, context: HAGContext) -> Steps:
    """Score the last attempt (signals, then the judge if asked for); finish when done.

    The run ends here when the attempt is accepted, failed, unscored (critique off), or the
    retries are spent; the answer is then the best-scored attempt.
    """
    attempt = state.attempts[-1]
    if attempt.error is not None:
        return finish(state, context, state.attempts, f"backend failed on attempt {attempt.index}")
    if not context.critique:
        return finish(state, context, state.attempts, "critique off: first attempt accepted")
    # A tool call or a structured answer is judged on its form: the signals and the judge read
    # prose.
    if attempt.tool_calls or attempt.invalid_tool_calls:
        verdict = critique_tool_calls(
            attempt.tool_calls,
            attempt.invalid_tool_calls,
            bound_tool_names(context.answer_options),
            context.accept_threshold,
        )
        return conclude(state, context, verdict, {})
    if (schema := context.answer_options.get("output_schema")) is not None:
        verdict = critique_structured(attempt.output, schema, context.accept_threshold)
        return conclude(state, context, verdict, {})
    critique, data = yield from _critique_text(state, context, attempt)
    return conclude(state, context, critique, data)


def _critique_text(
    state: HAGState, context: HAGContext, attempt: Attempt
) -> Generator[Call, CallResult, tuple[Critique, dict[str, Any]]]:
    """Score a text answer: the signals, then the judge when the run asks for one."""
    task = state.task or TaskKind.CHAT
    score, issues, direction, figures = measure_signals(
        output=attempt.output,
        prompt=state.prompt,
        task=task,
        finish_reason=attempt.finish_reason,
        mean_logprob=attempt.mean_logprob,
    )
    judge: JudgeVerdict | None = None
    judge_note: str | None = None
    data: dict[str, Any] = {}
    if context.critic == "judge" and attempt.output.strip():
        prompt = render("judge", task=task.value, prompt=state.prompt, answer=attempt.output)
        result = yield DecideCall("judge", prompt, JudgeVerdict)
        judge, data["raw"], why = decided(result, JudgeVerdict)
        judge_note = None if judge is not None else why
    critique = combine(
        signal_score=score,
        signal_issues=issues,
        signal_direction=direction,
        figures=figures,
        judge=judge,
        judge_note=judge_note,
        threshold=context.accept_threshold,
    )
    return critique, data


def conclude(
    state: HAGState, context: HAGContext, critique: Critique, data: dict[str, Any]
) -> dict[str, Any]:
    """Record the last attempt's critique; finish when it is accepted or the retries are spent."""
    attempt = state.attempts[-1]
    attempts = [*state.attempts[:-1], attempt.model_copy(update={"critique": critique})]
    message = f"attempt {attempt.index}: score {critique.score:.2f}, {critique.verdict}"
    if critique.issues:
        message += f" ({'; '.join(critique.issues)})"
    trace = _event(state, "critique", message, direction=critique.direction.value, **data)
    if critique.score >= context.accept_threshold:
        stop = f"accepted (score {critique.score:.2f})"
    elif len(attempts) - 1 >= context.max_retries:
        stop = f"retries exhausted ({context.max_retries})"
    else:
        return {"attempts": attempts, "trace": trace}
    return finish(state, context, attempts, stop, trace)


def route_after_critique(state: HAGState) -> str:
    """Retry unless the critique finished the run."""
    return END if state.stop_reason else "adjust"


# -- adjust ----------------------------------------------------------------------------------


def adjust_steps(state: HAGState, context: HAGContext) -> Steps:
    """Move the last configuration in the critique's direction, to something not yet tried."""
    attempt = state.attempts[-1]
    assert attempt.critique is not None
    outcome = compute_adjustment(
        attempt.params,
        attempt.sources,
        attempt.critique.direction,
        task=state.task or TaskKind.CHAT,
        bounds=context.bounds,
        pinned=context.params.keys(),
        tried=[a.params for a in state.attempts],
    )
    trace = _event(state, "adjust", outcome.reason, direction=outcome.direction.value)
    if outcome.params is None:
        return finish(
            state, context, state.attempts, f"nothing new to try: {outcome.reason}", trace
        )
    planned = PlannedParams(params=outcome.params, sources=outcome.sources, reason=outcome.reason)
    return {"pending": planned, "trace": trace}
    yield  # pragma: no cover - makes this function a generator


def route_after_adjust(state: HAGState) -> str:
    """Generate again unless the adjustment found nothing new (which finished the run)."""
    return END if state.stop_reason else "generate"


# -- the end of a run ----------------------------------------------------------------------


def best_attempt(attempts: list[Attempt]) -> Attempt | None:
    """The best-scored successful attempt (ties: the later one; unscored counts as 0)."""
    best: Attempt | None = None
    for attempt in attempts:
        if attempt.error is not None:
            continue
        score = attempt.critique.score if attempt.critique else 0.0
        best_score = best.critique.score if best and best.critique else 0.0
        if best is None or score >= best_score:
            best = attempt
    return best


def finish(
    state: HAGState,
    context: HAGContext,
    attempts: list[Attempt],
    stop_reason: str,
    trace: list[TraceEvent] | None = None,
) -> dict[str, Any]:
    """End the run: the best attempt becomes the answer and joins the conversation."""
    chosen = best_attempt(attempts)
    assert chosen is not None, "generate raises when no attempt succeeded"
    answer = AIMessage(
        content=chosen.output,
        tool_calls=cast(list[ToolCall], chosen.tool_calls),
        invalid_tool_calls=cast(list[InvalidToolCall], chosen.invalid_tool_calls),
        response_metadata={
            "hag_task": state.task.value if state.task else None,
            "hag_attempt": chosen.index,
            "hag_params": chosen.params.model_dump(),
        },
    )
    events = trace if trace is not None else state.trace
    done = TraceEvent(node="finish", message=f"answer from attempt {chosen.index}: {stop_reason}")
    return {
        "attempts": attempts,
        "answer": chosen.output,
        "best_attempt": chosen.index,
        "stop_reason": stop_reason,
        "pending": None,
        "messages": [answer],
        "trace": [*events, done],
    }
