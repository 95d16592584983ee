"""Public data models of the platform: agents, tasks, users, thread messages, invoke options.

These are the caller's view. They tolerate unknown and missing optional fields,
because the upstream API grows fields without notice.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "TERMINAL_STATUSES",
    "Agent",
    "InvokeOptions",
    "Page",
    "Task",
    "ThreadMessage",
    "User",
]

#: Statuses after which a task will not change again (spec §6). Anything else polls on.
TERMINAL_STATUSES = frozenset({"completed", "failed", "error", "stopped"})


class _Lenient(BaseModel):
    # Validators are built at first use (start-up needs few of these models).
    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True, defer_build=True)


class User(_Lenient):
    """End-user identity sent as `input.user`; `email` is required by the platform."""

    email: str
    id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    display_name: str | None = None
    additional_attributes: dict[str, Any] | None = None
    role: str | None = None
    is_super_admin: bool | None = None
    timezone: str | None = None


class Agent(_Lenient):
    """An agent as listed by the platform; only the fields a gateway uses are typed."""

    id: str
    name: str
    description: str | None = None
    status: str | None = None
    icon: str | None = None
    type: str | None = None
    instructions: Any = None


class Task(_Lenient):
    """A task: one execution and the thread it belongs to (spec §3)."""

    id: str
    agent_id: str | None = None
    organization_id: str | None = None
    status: str = "pending"
    input: dict[str, Any] | None = None
    result: str | None = None
    source: str | None = None
    created_at: str | None = None
    started_at: str | None = None
    paused_at: str | None = None
    finished_at: str | None = None
    is_manually_stopped: bool = False
    hitl_request: dict[str, Any] | None = None
    pending_eca_request: dict[str, Any] | None = None
    tokens: dict[str, Any] | None = None
    internal_status: str | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def is_paused(self) -> bool:
        return self.status == "paused"


class ThreadMessage(_Lenient):
    """One message of a thread (`GET /v1/tasks/{id}/thread`)."""

    id: str
    role: str
    content: Any = ""
    created_at: int | float | None = None


class Page(_Lenient):
    """A page of a paginated listing."""

    items: list[dict[str, Any]] = Field(default_factory=list)
    total: int = 0
    page: int = 1
    per_page: int = 20
    total_pages: int = 1


class InvokeOptions(BaseModel):
    """Every optional field of an invoke request (spec §2.1), typed.

    `text`, `files`, `user`, `id` and `source` are passed to the client's
    methods directly; everything else lives here.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    output_format: Literal["text", "markdown", "json", "voice"] | None = None
    output_schema: dict[str, Any] | None = None
    think_mode: Literal["default", "harder"] | None = None
    instructions_override: str | None = None
    additional_context: str | None = None
    expected_output: str | None = None
    title: str | None = None
    llm_model_provider: str | None = None
    llm_model_name: str | None = None
    llm_reasoning_effort: Literal["low", "medium", "high", "xhigh"] | None = None
    payload_extension: dict[str, Any] | None = None
    parent_execution_id: str | None = None
    disable_attachment_injection: bool | None = None
    mcp_servers: list[dict[str, Any]] | None = None
    version: str | None = Field(default=None, description="agent version: a number or 'draft'")
