"""Emulator state: tasks (threads) and their turns, the event log of a turn, recorded requests.

The JSON the API returns is built here from that state, so every endpoint and every SSE
event shows the same task object.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import anyio

from bridge.emulator._common import dumps, epoch, utc_iso
from bridge.models import TERMINAL_STATUSES

__all__ = ["RecordedRequest", "Signal", "TaskRecord", "Turn"]

_INVOKE_PATH = re.compile(r"^/v1/agents/(?P<agent>[^/]+)/invoke(?:/(?P<mode>async|stream))?/?$")
_AGENT_PATH = re.compile(r"^/v1/agents/(?P<agent>[^/]+)")
_TASK_PATH = re.compile(r"^/v1/tasks/(?P<task>[^/]+)")


class Signal:
    """A broadcast wake-up: `fire()` wakes every current `wait()`er."""

    def __init__(self) -> None:
        self._event = anyio.Event()

    def fire(self) -> None:
        event, self._event = self._event, anyio.Event()
        event.set()

    async def wait(self) -> None:
        await self._event.wait()


@dataclass
class RecordedRequest:
    """One HTTP request as the emulator received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    time: float
    status: int | None = None
    fault: str | None = None

    @property
    def json(self) -> Any:
        """The parsed JSON body, or `None` when there was none or it was not JSON."""
        return self.body

    @property
    def is_invoke(self) -> bool:
        return self.method == "POST" and _INVOKE_PATH.match(self.path) is not None

    @property
    def agent_id(self) -> str | None:
        match = _AGENT_PATH.match(self.path)
        return match["agent"] if match else None

    @property
    def thread_id(self) -> str | None:
        """The body's `id` on invoke requests, the path's task id on task requests."""
        if self.is_invoke:
            value = self.body.get("id") if isinstance(self.body, dict) else None
            return value if isinstance(value, str) else None
        match = _TASK_PATH.match(self.path)
        return match["task"] if match else None

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": self.headers,
            "body": self.body,
            "time": self.time,
            "status": self.status,
            "fault": self.fault,
        }


@dataclass(eq=False)
class Turn:
    """One turn of a thread: its input, its lifecycle, and the SSE events it emitted."""

    number: int
    agent_id: str
    input: dict[str, Any]
    source: str
    request: dict[str, Any]
    agent_version: str
    base_url: str
    status: str = "pending"
    result: str | None = None
    created_at: str = field(default_factory=utc_iso)
    started_at: str | None = None
    paused_at: str | None = None
    finished_at: str | None = None
    is_manually_stopped: bool = False
    hitl_request: dict[str, Any] | None = None
    tokens: dict[str, int] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    frames: list[bytes] = field(default_factory=list)
    closed: bool = False
    approved: bool | None = None
    hub: Signal | None = None
    changed: Signal = field(default_factory=Signal)
    done: anyio.Event = field(default_factory=anyio.Event)
    resumed: anyio.Event = field(default_factory=anyio.Event)
    logged_in: anyio.Event = field(default_factory=anyio.Event)
    scope: anyio.CancelScope | None = None

    @property
    def text(self) -> str:
        return str(self.input.get("text", ""))

    @property
    def user(self) -> dict[str, Any] | None:
        user = self.input.get("user")
        return user if isinstance(user, dict) else None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def append(self, event: dict[str, Any]) -> None:
        """Add one SSE event to the log and wake every stream reading it."""
        self.events.append(event)
        self.frames.append(f"data: {dumps(event)}\n\n".encode())
        self.notify()

    def notify(self) -> None:
        self.changed.fire()
        if self.hub is not None:
            self.hub.fire()

    def close(self) -> None:
        self.closed = True
        self.done.set()
        self.notify()


@dataclass(eq=False)
class TaskRecord:
    """A task: one thread of turns under one id (spec §3, §5)."""

    id: str
    organization_id: str
    turns: list[Turn] = field(default_factory=list)
    created_at: str = field(default_factory=utc_iso)
    updated_at: str = field(default_factory=utc_iso)
    messages: list[dict[str, Any]] = field(default_factory=list)
    full_messages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def latest(self) -> Turn:
        return self.turns[-1]

    @property
    def agent_id(self) -> str:
        return self.latest.agent_id

    @property
    def status(self) -> str:
        return self.latest.status

    @property
    def result(self) -> str | None:
        return self.latest.result

    @property
    def inputs(self) -> list[dict[str, Any]]:
        """Every turn's input, oldest first."""
        return [turn.input for turn in self.turns]

    @property
    def sources(self) -> list[str]:
        return [turn.source for turn in self.turns]

    @property
    def users(self) -> list[dict[str, Any] | None]:
        return [turn.user for turn in self.turns]

    def touch(self) -> None:
        self.updated_at = utc_iso()

    def add_message(self, role: str, content: str, **extra: Any) -> None:
        """Append a thread message; user/assistant ones also go to the root thread."""
        number = self.latest.number
        kind = {"user": "user", "assistant": "agent"}.get(role)
        message_id = (
            f"{self.id}_{kind}_{number}"
            if kind
            else f"{self.id}_{role}_{number}_{len(self.full_messages) + 1}"
        )
        message: dict[str, Any] = {
            "id": message_id,
            "role": role,
            "content": content,
            "created_at": epoch(),
        }
        if role in ("user", "assistant"):
            self.messages.append({**message, **extra})
        self.full_messages.append({**message, "from_history": False, **extra})

    def to_json(self) -> dict[str, Any]:
        """The full task object (spec §3), reflecting the latest turn."""
        turn = self.latest
        request = turn.request
        return {
            "id": self.id,
            "agent_id": turn.agent_id,
            "organization_id": self.organization_id,
            "input": turn.input,
            "status": turn.status,
            "internal_status": None,
            "last_executed_node_id": None,
            "agent_version": turn.agent_version,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "started_at": turn.started_at,
            "paused_at": turn.paused_at,
            "finished_at": turn.finished_at,
            "result": turn.result,
            "parent_execution": request.get("parent_execution_id"),
            "sub_executions": [],
            "finished_sub_executions": [],
            "is_manually_stopped": turn.is_manually_stopped,
            "payload_extension": request.get("payload_extension"),
            "hitl_request": turn.hitl_request,
            "pending_eca_request": None,
            "source": turn.source,
            "worker_id": request.get("worker_id"),
            "additional_context": request.get("additional_context"),
            "instructions_override": request.get("instructions_override"),
            "expected_output": request.get("expected_output"),
            "test_run_node_id": request.get("test_run_node_id"),
            "is_orchestration": False,
            "output_format": request.get("output_format") or "text",
            "voice_id": None,
            "output_schema": request.get("output_schema"),
            "events_streaming": bool(request.get("events_streaming")),
            "used_mutating_tools": False,
            "is_continuous": False,
            "mcp_servers": request.get("mcp_servers") or [],
            "triggering_agent_id": request.get("triggering_agent_id"),
            "title": request.get("title"),
            "think_mode": request.get("think_mode") or "default",
            "disable_attachment_injection": bool(request.get("disable_attachment_injection")),
            "deep_planning": {
                "enabled": False,
                "enforce": False,
                "started": False,
                "question_raised": False,
                "tasks": [],
            },
            "execution_attempts": 1,
            "user_tokens": None,
            "user_oidc_token": None,
            "return_metrics": bool(request.get("return_metrics")),
            "tokens": turn.tokens,
            "llm_model_provider": request.get("llm_model_provider") or "emulator",
            "llm_model_name": request.get("llm_model_name") or "scripted",
            "llm_reasoning_effort": request.get("llm_reasoning_effort") or "medium",
        }

    def to_list_item(self) -> dict[str, Any]:
        """The `TasksListItem` summary of the thread (spec §2.2)."""
        turn = self.latest
        user = turn.user
        return {
            "id": self.id,
            "agent_id": turn.agent_id,
            "organization_id": self.organization_id,
            "status": turn.status,
            "user_id": user.get("id") if user else None,
            "parent_task_id": turn.request.get("parent_execution_id"),
            "triggering_agent_id": turn.request.get("triggering_agent_id"),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "source_node_type": turn.source,
            "result": turn.result,
            "title": turn.request.get("title"),
        }
