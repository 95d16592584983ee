"""The wire JSON of the platform, turned into typed events and models here and nowhere else.

Tolerant where the spec is uncertain: reasoning payloads as a string or an object,
`sub_agent_trigger` with or without a sub-task id, legacy `content_chunk` names.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ConfigDict, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from bridge.errors import TransportError
from bridge.events import AgentEvent, Event, TextDelta, UnknownEvent
from bridge.models import InvokeOptions, Task, User

__all__ = ["build_invoke_body", "parse_event", "parse_event_data", "parse_task"]

# Built at the first event parsed, not at start-up.
_EVENTS: TypeAdapter[Event] = TypeAdapter(AgentEvent, config=ConfigDict(defer_build=True))
_ENVELOPE_KEYS = ("task_id", "organization_id", "time")
_validate_delta = TextDelta.model_validate


def parse_event_data(data: str) -> Event:
    """One SSE `data` field → an event. Undecodable JSON is reported as an `UnknownEvent`."""
    try:
        envelope = json.loads(data)
    except ValueError:
        return UnknownEvent(type="invalid_json", raw={"data": data})
    if not isinstance(envelope, dict):
        return UnknownEvent(type="invalid_envelope", raw={"data": envelope})
    return parse_event(envelope)


def parse_event(envelope: dict[str, Any]) -> Event:
    """A decoded envelope `{type, task_id, organization_id, time, data}` → an event."""
    kind = envelope.get("type")
    if kind == "chunk" and isinstance(envelope.get("data"), str):
        # The hot path: pydantic-core validation of a flat dict beats model_construct.
        return _validate_delta(
            {
                "text": envelope["data"],
                "task_id": envelope.get("task_id"),
                "organization_id": envelope.get("organization_id"),
                "time": envelope.get("time"),
            }
        )
    fields = {key: envelope[key] for key in _ENVELOPE_KEYS if isinstance(envelope.get(key), str)}
    shaped = _shape(str(kind), envelope.get("data"), fields)
    if shaped is None:
        return UnknownEvent(type=str(kind), raw=envelope, **fields)
    try:
        return _EVENTS.validate_python(shaped)
    except PydanticValidationError:
        return UnknownEvent(type=str(kind), raw=envelope, **fields)


def _shape(kind: str, data: Any, fields: dict[str, Any]) -> dict[str, Any] | None:
    body: dict[str, Any] = {"type": kind, **fields}
    obj = data if isinstance(data, dict) else {}
    if kind in ("task_created", "task_updated", "task_finished"):
        if not obj.get("id") and fields.get("task_id"):
            obj = {**obj, "id": fields["task_id"]}
        body["task"] = obj
    elif kind in ("think", "analyze"):
        if isinstance(data, str):
            body["thought" if kind == "think" else "analysis"] = data
        else:
            body.update({k: v for k, v in obj.items() if k != "type"})
            for key in ("thought", "action", "result", "analysis", "title"):
                if key in body and not isinstance(body[key], str):
                    body[key] = json.dumps(body[key])
    elif kind in ("tool_call_request", "tool_call_result"):
        body.update({k: v for k, v in obj.items() if k != "type"})
    elif kind == "chunk":
        body["text"] = data if isinstance(data, str) else str(obj.get("content", ""))
    elif kind == "content_chunk":  # legacy name
        body.update(type="chunk", text=str(obj.get("content", "")))
    elif kind == "sub_agent_trigger":
        sub_task = obj.get("task_id") or obj.get("sub_task_id") or obj.get("id")
        body.update(agent_id=obj.get("agent_id"), query=obj.get("query"), sub_task_id=sub_task)
        body["raw"] = data
    elif kind == "plan_updated":
        tasks = obj.get("tasks")
        body.update(tasks=tasks if isinstance(tasks, list) else [], raw=data)
    elif kind == "auth_event":
        raw_detail = obj.get("data")
        detail: dict[str, Any] = raw_detail if isinstance(raw_detail, dict) else {}
        body.update(
            kind=str(obj.get("type", "unknown")),
            url=detail.get("url"),
            server_name=detail.get("server_name"),
            server_url=detail.get("server_url"),
            message=detail.get("message"),
        )
    elif kind == "task_compactization":
        body.update(kind=obj.get("type"), raw=data)
    else:
        return None
    return body


def parse_task(payload: Any) -> Task:
    """A task object from a response body.

    Raises:
        TransportError: the body is no task (empty, or missing its fields).
    """
    try:
        return Task.model_validate(payload)
    except PydanticValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem["loc"]) or "body"
        raise TransportError(f"platform sent no valid task ({where}: {problem['msg']})") from exc


def build_invoke_body(
    text: str,
    *,
    thread: str | None,
    files: list[str] | tuple[str, ...],
    user: User | None,
    source: str | None,
    options: InvokeOptions | None,
    events_streaming: bool,
) -> dict[str, Any]:
    """The JSON body of an invoke request (spec §2.1); absent options are not sent."""
    payload: dict[str, Any] = {"text": text, "files": list(files)}
    if user is not None:
        payload["user"] = user.model_dump(exclude_none=True, exclude={"display_name"})
    body: dict[str, Any] = {"input": payload}
    if thread:
        body["id"] = thread
    if source:
        body["source"] = source
    if events_streaming:
        body["events_streaming"] = True
    if options is not None:
        body.update(options.model_dump(exclude_none=True, exclude={"version"}))
    return body
