"""The run tools: start an agent run, read its state, cancel it (for clients that time out)."""

from __future__ import annotations

from typing import Any

import mcp_types as types

__all__ = ["RUN_TOOLS", "RUN_TOOL_SCHEMAS"]

_RUN_ID = {"type": "string", "minLength": 1, "description": "The run id start_run returned."}

_START_INPUT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "agent": {
            "type": "string",
            "minLength": 1,
            "description": "Tool name, agent name or agent id.",
        },
        "message": {
            "type": "string",
            "minLength": 1,
            "description": "What to ask or tell the agent.",
        },
        "conversation": {
            "type": "string",
            "description": "A `conversation` handle from an earlier result, to continue that thread.",
        },
        "files": {"type": "array", "items": {"type": "string", "format": "uri"}},
    },
    "required": ["agent", "message"],
    "additionalProperties": False,
}

_RUN_INPUT: dict[str, Any] = {
    "type": "object",
    "properties": {"run": _RUN_ID},
    "required": ["run"],
    "additionalProperties": False,
}

_GET_RUN_INPUT: dict[str, Any] = {
    **_RUN_INPUT,
    "properties": {
        "run": _RUN_ID,
        "wait": {
            "type": "number",
            "minimum": 0,
            "maximum": 50,
            "description": "Seconds to wait for the run to finish before answering (default 0).",
        },
    },
}

_NULLABLE_STRING = {"type": ["string", "null"]}

RUN_OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "run": {"type": "string"},
        "agent": {"type": "string"},
        "status": {
            "type": "string",
            "enum": [
                "working",
                "completed",
                "failed",
                "error",
                "stopped",
                "paused",
                "login_required",
            ],
        },
        "step": _NULLABLE_STRING,
        "text": {"type": "string", "description": "What the agent has written so far."},
        "answer": {**_NULLABLE_STRING, "description": "The final answer, once done."},
        "conversation": _NULLABLE_STRING,
        "task_id": _NULLABLE_STRING,
        "error": _NULLABLE_STRING,
        "attention": {
            "type": ["object", "null"],
            "description": "What the user must do (sign in, approve) for the agent to go on.",
        },
    },
    "required": ["run", "agent", "status", "text"],
}


def _tool(
    name: str, title: str, description: str, schema: dict[str, Any], *, read_only: bool
) -> types.Tool:
    return types.Tool(
        name=name,
        title=title,
        description=description,
        input_schema=schema,
        output_schema=RUN_OUTPUT_SCHEMA,
        annotations=types.ToolAnnotations(
            title=title, read_only_hint=read_only, open_world_hint=not read_only
        ),
    )


RUN_TOOL_SCHEMAS: dict[str, dict[str, Any]] = {
    "start_run": _START_INPUT,
    "get_run": _GET_RUN_INPUT,
    "cancel_run": _RUN_INPUT,
}

RUN_TOOLS: list[types.Tool] = [
    _tool(
        "start_run",
        "Start an agent run",
        "Start an agent in the background and return a run id at once; poll it with get_run. "
        "For clients whose tool calls time out on long agents.",
        _START_INPUT,
        read_only=False,
    ),
    _tool(
        "get_run",
        "Read an agent run",
        "Status, latest step, text written so far and, when done, the final answer of a run. "
        "`wait` long-polls until the run ends.",
        _GET_RUN_INPUT,
        read_only=True,
    ),
    _tool(
        "cancel_run",
        "Cancel an agent run",
        "Stop a run and its upstream task.",
        _RUN_INPUT,
        read_only=False,
    ),
]
