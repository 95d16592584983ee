"""Typed events of one agent run, as adapters see them.

One frozen model per upstream event type (spec §4.3) in a discriminated union
on `type`; an unknown type becomes `UnknownEvent`, never a crash. The wire JSON
is turned into these models in `bridge.client._wire` and nowhere else.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from bridge.models import Task

__all__ = [
    "AgentEvent",
    "AnalysisRecorded",
    "AuthEventReceived",
    "ContextCompacted",
    "Event",
    "PlanUpdated",
    "ResumedByPolling",
    "SubAgentTriggered",
    "TaskCreated",
    "TaskFinished",
    "TaskUpdated",
    "TextDelta",
    "ThoughtRecorded",
    "ToolCallFinished",
    "ToolCallRequested",
    "UnknownEvent",
]


class _Event(BaseModel):
    # Validators are built at first use: a server answers its first requests before any
    # event exists.
    model_config = ConfigDict(frozen=True, defer_build=True)

    task_id: str | None = None
    organization_id: str | None = None
    time: str | None = None


class _TaskEvent(_Event):
    task: Task


class TaskCreated(_TaskEvent):
    """A turn started; `task.id` is the thread id to continue later."""

    type: Literal["task_created"] = "task_created"


class TaskUpdated(_TaskEvent):
    """The task changed without finishing (executing, paused, internal status)."""

    type: Literal["task_updated"] = "task_updated"


class TaskFinished(_TaskEvent):
    """The turn completed; `task.result` is the authoritative answer.

    Failed, errored and stopped turns are raised as `RunFailedError` instead.
    """

    type: Literal["task_finished"] = "task_finished"


class _Reasoning(_Event):
    title: str | None = None
    thought: str | None = None
    action: str | None = None
    result: str | None = None
    analysis: str | None = None
    confidence: float | None = None

    @property
    def text(self) -> str:
        """The most telling single line of this step."""
        for candidate in (self.title, self.thought, self.analysis, self.action, self.result):
            if candidate:
                return candidate
        return ""


class ThoughtRecorded(_Reasoning):
    """A `think` reasoning step (a plain string upstream lands in `thought`)."""

    type: Literal["think"] = "think"


class AnalysisRecorded(_Reasoning):
    """An `analyze` reasoning step (a plain string upstream lands in `analysis`)."""

    type: Literal["analyze"] = "analyze"


class _ToolCall(_Event):
    request_id: str | None = None
    operation_id: str | None = None
    tool_call_id: str | None = None
    tool_name: str | None = None
    payload: Any = None
    reasoning: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return self.tool_name or self.operation_id or "tool"


class ToolCallRequested(_ToolCall):
    """The agent called a tool."""

    type: Literal["tool_call_request"] = "tool_call_request"


class ToolCallFinished(_ToolCall):
    """A tool call returned (`is_error` when it failed)."""

    type: Literal["tool_call_result"] = "tool_call_result"
    result: Any = None
    is_error: bool = False


class TextDelta(_Event):
    """A fragment of the visible answer; concatenate in order."""

    type: Literal["chunk"] = "chunk"
    text: str


class SubAgentTriggered(_Event):
    """A sub-agent task was started."""

    type: Literal["sub_agent_trigger"] = "sub_agent_trigger"
    agent_id: str | None = None
    query: str | None = None
    sub_task_id: str | None = None
    raw: Any = None


class PlanUpdated(_Event):
    """The deep-planning state changed."""

    type: Literal["plan_updated"] = "plan_updated"
    tasks: list[dict[str, Any]] = Field(default_factory=list)
    raw: Any = None


class AuthEventReceived(_Event):
    """A connector needs the user to sign in (`login_required` carries `url`), or auth changed."""

    type: Literal["auth_event"] = "auth_event"
    kind: str
    url: str | None = None
    server_name: str | None = None
    server_url: str | None = None
    message: str | None = None

    @property
    def is_login_required(self) -> bool:
        return self.kind == "login_required" and bool(self.url)


class ContextCompacted(_Event):
    """The platform compacted the context or retried an unfinished plan."""

    type: Literal["task_compactization"] = "task_compactization"
    kind: str | None = None
    raw: Any = None


class ResumedByPolling(_Event):
    """The stream was lost after the task started; the client now polls the task.

    Emitted by the bridge, not the platform. `reason` says what broke.
    """

    type: Literal["bridge_resumed_by_polling"] = "bridge_resumed_by_polling"
    reason: str


class UnknownEvent(_Event):
    """An event type this bridge does not know; `raw` is the whole envelope."""

    type: str
    raw: dict[str, Any]


def _discriminate(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return kind if kind in _KNOWN else "unknown"


AgentEvent = Annotated[
    Annotated[TaskCreated, Tag("task_created")]
    | Annotated[TaskUpdated, Tag("task_updated")]
    | Annotated[TaskFinished, Tag("task_finished")]
    | Annotated[ThoughtRecorded, Tag("think")]
    | Annotated[AnalysisRecorded, Tag("analyze")]
    | Annotated[ToolCallRequested, Tag("tool_call_request")]
    | Annotated[ToolCallFinished, Tag("tool_call_result")]
    | Annotated[TextDelta, Tag("chunk")]
    | Annotated[SubAgentTriggered, Tag("sub_agent_trigger")]
    | Annotated[PlanUpdated, Tag("plan_updated")]
    | Annotated[AuthEventReceived, Tag("auth_event")]
    | Annotated[ContextCompacted, Tag("task_compactization")]
    | Annotated[ResumedByPolling, Tag("bridge_resumed_by_polling")]
    | Annotated[UnknownEvent, Tag("unknown")],
    Discriminator(_discriminate),
]
"""Every event a run can yield (the discriminated union)."""

Event = (
    TaskCreated
    | TaskUpdated
    | TaskFinished
    | ThoughtRecorded
    | AnalysisRecorded
    | ToolCallRequested
    | ToolCallFinished
    | TextDelta
    | SubAgentTriggered
    | PlanUpdated
    | AuthEventReceived
    | ContextCompacted
    | ResumedByPolling
    | UnknownEvent
)

_KNOWN = frozenset(
    {
        "task_created",
        "task_updated",
        "task_finished",
        "think",
        "analyze",
        "tool_call_request",
        "tool_call_result",
        "chunk",
        "sub_agent_trigger",
        "plan_updated",
        "auth_event",
        "task_compactization",
        "bridge_resumed_by_polling",
    }
)
