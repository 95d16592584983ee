"""Request validation of the emulated API: invoke body (spec §2.1), list queries, 422 details."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

__all__ = [
    "STATUSES",
    "AgentExecutionRequest",
    "ExecutionInput",
    "InvalidRequest",
    "ListQuery",
    "TaskListQuery",
    "UserInput",
    "input_json",
    "parse_body",
    "parse_query",
]

STATUSES = ("pending", "executing", "paused", "error", "failed", "completed", "stopped")


class InvalidRequest(Exception):
    """A request failed validation; `detail` is the spec's 422 `detail` list."""

    def __init__(self, detail: list[dict[str, Any]]) -> None:
        super().__init__(detail)
        self.detail = detail


class _Open(BaseModel):
    # Unknown fields are accepted and ignored, as the upstream (FastAPI) does.
    model_config = ConfigDict(extra="allow")


class UserInput(_Open):
    """`input.user`: the end user; `email` is required whenever `user` is present."""

    email: str
    id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    additional_attributes: dict[str, Any] | None = None
    role: str | None = None
    is_super_admin: bool | None = None
    timezone: str | None = None


class ExecutionInput(_Open):
    """`input`: the prompt, attached file URLs and the end user."""

    text: str = ""
    files: list[str] = Field(default_factory=list)
    user: UserInput | None = None


class AgentExecutionRequest(_Open):
    """Body of the three invoke endpoints; only `input` is structurally required."""

    input: ExecutionInput
    id: str | None = Field(default=None, min_length=1)
    source: str | None = None
    output_format: Literal["text", "markdown", "json", "voice"] | None = None
    output_schema: dict[str, Any] | None = None
    events_streaming: bool | None = None
    think_mode: Literal["default", "harder"] | None = None
    llm_model_provider: str | None = None
    llm_model_name: str | None = None
    llm_reasoning_effort: Literal["low", "medium", "high", "xhigh"] | None = None
    instructions_override: str | None = None
    additional_context: str | None = None
    expected_output: str | None = None
    title: str | None = None
    payload_extension: dict[str, Any] | None = None
    parent_execution_id: str | None = None
    triggering_agent_id: str | None = None
    worker_id: str | None = None
    run_locally: bool | None = None
    mcp_servers: list[dict[str, Any]] = Field(default_factory=list)
    disable_attachment_injection: bool | None = None
    user_oidc_token: str | None = None
    user_tokens: dict[str, Any] | None = None
    test_run_node_id: str | None = None
    return_metrics: bool | None = None


class ListQuery(BaseModel):
    """Pagination query of every list endpoint: `per_page` 1..50, default 20."""

    model_config = ConfigDict(extra="ignore")

    page: int = Field(default=1, ge=1)
    per_page: int = Field(default=20, ge=1, le=50)


class TaskListQuery(ListQuery):
    """`GET /v1/tasks` filters (the emulator ignores the date window)."""

    user_id: str | None = None
    agent_id: str | None = None
    parent_task_id: str | None = None
    triggering_agent_id: str | None = None
    status: (
        Literal["pending", "executing", "paused", "error", "failed", "completed", "stopped"] | None
    ) = None


_Q = TypeVar("_Q", bound=BaseModel)


def _detail(exc: PydanticValidationError, where: str) -> list[dict[str, Any]]:
    return [
        {"loc": [where, *error["loc"]], "msg": error["msg"], "type": error["type"]}
        for error in exc.errors(include_url=False)
    ]


def parse_body(raw: bytes) -> AgentExecutionRequest:
    """Validate an invoke body.

    Raises:
        InvalidRequest: the body is missing, not JSON, or does not match the schema.
    """
    if not raw.strip():
        raise InvalidRequest([{"loc": ["body"], "msg": "Field required", "type": "missing"}])
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        position = exc.pos if isinstance(exc, json.JSONDecodeError) else exc.start
        raise InvalidRequest(
            [{"loc": ["body", position], "msg": "JSON decode error", "type": "json_invalid"}]
        ) from None
    try:
        return AgentExecutionRequest.model_validate(data)
    except PydanticValidationError as exc:
        raise InvalidRequest(_detail(exc, "body")) from None


def parse_query(model: type[_Q], params: Mapping[str, str]) -> _Q:
    """Validate query parameters against `model`.

    Raises:
        InvalidRequest: a parameter is malformed or out of range.
    """
    try:
        return model.model_validate(dict(params))
    except PydanticValidationError as exc:
        raise InvalidRequest(_detail(exc, "query")) from None


def input_json(body: AgentExecutionRequest) -> dict[str, Any]:
    """The task's `input` as responses show it: `user` gains `display_name` (the email)."""
    data = body.input.model_dump(mode="json", exclude_none=True)
    data.setdefault("files", [])
    user = data.get("user")
    data["user"] = {**user, "display_name": user["email"]} if user else None
    return data
