"""Wire JSON → typed events: every type of the spec, either shape where the spec is unsure."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bridge.events import (
    AnalysisRecorded,
    AuthEventReceived,
    ContextCompacted,
    PlanUpdated,
    SubAgentTriggered,
    TaskCreated,
    TaskFinished,
    TaskUpdated,
    TextDelta,
    ThoughtRecorded,
    ToolCallFinished,
    ToolCallRequested,
    UnknownEvent,
)
from bridge.models import InvokeOptions, User
from bridge.testing import build_invoke_body, parse_event_data

TASK = {
    "id": "t1",
    "agent_id": "a1",
    "organization_id": "o1",
    "status": "pending",
    "input": {"text": "hi"},
}


def envelope(kind: str, data: Any) -> str:
    return json.dumps(
        {
            "type": kind,
            "task_id": "t1",
            "organization_id": "o1",
            "time": "2026-04-10T19:01:22.900100Z",
            "data": data,
        }
    )


@pytest.mark.parametrize(
    ("kind", "cls"),
    [("task_created", TaskCreated), ("task_updated", TaskUpdated), ("task_finished", TaskFinished)],
)
def test_lifecycle_events_carry_the_task(kind: str, cls: type[Any]) -> None:
    event = parse_event_data(envelope(kind, {**TASK, "unknown_new_field": 1}))
    assert isinstance(event, cls)
    assert event.task.id == "t1" and event.task_id == "t1" and event.time


def test_a_lifecycle_event_without_task_id_in_data_takes_the_envelope_id() -> None:
    event = parse_event_data(envelope("task_updated", {"status": "executing"}))
    assert isinstance(event, TaskUpdated) and event.task.id == "t1"


def test_a_chunk_is_a_text_delta() -> None:
    event = parse_event_data(envelope("chunk", "Hello"))
    assert isinstance(event, TextDelta) and event.text == "Hello" and event.task_id == "t1"


def test_the_legacy_content_chunk_is_a_text_delta() -> None:
    event = parse_event_data(envelope("content_chunk", {"content": "old", "is_final": False}))
    assert isinstance(event, TextDelta) and event.text == "old"


@pytest.mark.parametrize(
    "payload",
    [
        "I should check the weather",
        {"type": "think", "title": "Plan", "thought": "check", "confidence": 0.9},
    ],
)
def test_think_accepts_a_string_or_an_object(payload: Any) -> None:
    event = parse_event_data(envelope("think", payload))
    assert isinstance(event, ThoughtRecorded) and event.text


@pytest.mark.parametrize(
    "payload",
    ["looks right", {"type": "analyze", "title": "Check", "analysis": "ok", "result": {"n": 1}}],
)
def test_analyze_accepts_a_string_or_an_object(payload: Any) -> None:
    event = parse_event_data(envelope("analyze", payload))
    assert isinstance(event, AnalysisRecorded) and event.text


def test_tool_call_request_and_result() -> None:
    call = {
        "request_id": "r",
        "operation_id": "get_weather",
        "tool_call_id": "c1",
        "payload": {"bodyParams": {}},
    }
    request = parse_event_data(envelope("tool_call_request", call))
    result = parse_event_data(
        envelope("tool_call_result", {**call, "result": {"t": 1}, "is_error": True})
    )
    assert isinstance(request, ToolCallRequested) and request.name == "get_weather"
    assert isinstance(result, ToolCallFinished) and result.is_error and result.result == {"t": 1}


def test_sub_agent_trigger_with_or_without_a_sub_task_id() -> None:
    with_id = parse_event_data(
        envelope("sub_agent_trigger", {"agent_id": "a2", "query": "q", "task_id": "s1"})
    )
    without = parse_event_data(envelope("sub_agent_trigger", {"agent_id": "a2", "reasoning": {}}))
    assert isinstance(with_id, SubAgentTriggered) and with_id.sub_task_id == "s1"
    assert isinstance(without, SubAgentTriggered) and without.sub_task_id is None


def test_plan_updated_keeps_the_tasks() -> None:
    plan = {"enabled": True, "tasks": [{"id": "1", "title": "step", "completed": False}]}
    event = parse_event_data(envelope("plan_updated", plan))
    assert isinstance(event, PlanUpdated) and event.tasks[0]["title"] == "step"


def test_auth_events_of_every_kind() -> None:
    login = parse_event_data(
        envelope(
            "auth_event",
            {
                "type": "login_required",
                "data": {"url": "https://login", "server_name": "gh", "server_url": "u"},
            },
        )
    )
    ready = parse_event_data(
        envelope("auth_event", {"type": "token_ready", "data": {"access_token": "REDACTED"}})
    )
    issue = parse_event_data(
        envelope("auth_event", {"type": "token_issue", "data": {"message": "denied"}})
    )
    assert (
        isinstance(login, AuthEventReceived)
        and login.is_login_required
        and login.url == "https://login"
    )
    assert isinstance(ready, AuthEventReceived) and not ready.is_login_required
    assert isinstance(issue, AuthEventReceived) and issue.message == "denied"


def test_context_compaction() -> None:
    event = parse_event_data(
        envelope("task_compactization", {"type": "summarization", "data": {"new_task_prompt": "p"}})
    )
    assert isinstance(event, ContextCompacted) and event.kind == "summarization"


@pytest.mark.parametrize(
    "data",
    [
        envelope("brand_new_event", {"x": 1}),
        "not json at all",
        "[1, 2]",
        envelope("task_created", "not an object"),
    ],
)
def test_anything_unexpected_is_an_unknown_event_never_a_crash(data: str) -> None:
    assert isinstance(parse_event_data(data), UnknownEvent | TaskCreated)


def test_invoke_body_sends_what_is_set_and_nothing_else() -> None:
    body = build_invoke_body(
        "hi",
        thread="t1",
        files=["https://f"],
        user=User(email="a@b.c", id="u", display_name="ignored"),
        source="telegram",
        options=InvokeOptions(expected_output="short", llm_model_name="m", version="3"),
        events_streaming=True,
    )
    assert body == {
        "input": {"text": "hi", "files": ["https://f"], "user": {"email": "a@b.c", "id": "u"}},
        "id": "t1",
        "source": "telegram",
        "events_streaming": True,
        "expected_output": "short",
        "llm_model_name": "m",
    }
