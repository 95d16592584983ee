"""The tool catalog: one tool per exposed agent, refreshed from the upstream list.

When the list changes, clients are told: handshake-era sessions get
`notifications/tools/list_changed` on their standalone channel, 2026-07-28 clients
through their `subscriptions/listen` stream.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import mcp_types as types

from bridge import errors
from bridge.chat import AgentDirectory
from bridge.models import Agent
from bridge_mcp._names import tool_names

__all__ = ["AGENT_INPUT_SCHEMA", "AGENT_OUTPUT_SCHEMA", "AgentCatalog"]

logger = logging.getLogger(__name__)

AGENT_INPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "message": {
            "type": "string",
            "minLength": 1,
            "description": "What to ask or tell the agent.",
        },
        "conversation": {
            "type": "string",
            "description": "A `conversation` handle from an earlier result, to continue that thread.",
        },
        "files": {
            "type": "array",
            "items": {"type": "string", "format": "uri"},
            "description": "URLs of files the agent should read.",
        },
    },
    "required": ["message"],
    "additionalProperties": False,
}

AGENT_OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "answer": {
            "type": "string",
            "description": "The agent's answer (or what it has written so far).",
        },
        "conversation": {
            "type": ["string", "null"],
            "description": "Pass as `conversation` to continue this thread, from any session.",
        },
        "task_id": {"type": ["string", "null"]},
        "status": {
            "type": "string",
            "enum": [
                "completed",
                "failed",
                "error",
                "stopped",
                "paused",
                "login_required",
                "working",
                "running",
            ],
            "description": "'running': the call's time budget is spent and the agent goes on; "
            "follow it with get_run.",
        },
        "run": {"type": "string", "description": "Run id for get_run while the agent goes on."},
        "error": {"type": "string", "description": "Why the turn did not complete."},
        "note": {"type": "string", "description": "What to do next."},
    },
    "required": ["answer", "conversation", "task_id", "status"],
}

ChangeListener = Callable[[], Awaitable[None]]


def agent_tool(name: str, agent: Agent) -> types.Tool:
    title = agent.name
    description = agent.description or f"Ask the agent {agent.name!r}."
    return types.Tool(
        name=name,
        title=title,
        description=(
            f"{description}\n\nStreams progress; pass the `conversation` from a result to continue "
            "that thread."
        ),
        input_schema=AGENT_INPUT_SCHEMA,
        output_schema=AGENT_OUTPUT_SCHEMA,
        annotations=types.ToolAnnotations(
            title=title,
            read_only_hint=False,
            destructive_hint=False,
            idempotent_hint=False,
            open_world_hint=True,
        ),
    )


class AgentCatalog:
    """Tool name → agent, as of the last successful refresh."""

    def __init__(self, directory: AgentDirectory, allow: list[str]) -> None:
        self.directory = directory
        self._allow = {entry.casefold() for entry in allow}
        self.agents: dict[str, Agent] = {}
        self.tools: list[types.Tool] = []
        self._listeners: list[ChangeListener] = []
        self.problem: str | None = None
        """Why the agents cannot be listed (a refused key, an unreachable platform), if so."""

    def on_change(self, listener: ChangeListener) -> None:
        self._listeners.append(listener)

    def find(self, name_or_id: str) -> tuple[str, Agent] | None:
        """By tool name, agent id or agent name (case-insensitive)."""
        if name_or_id in self.agents:
            return name_or_id, self.agents[name_or_id]
        wanted = name_or_id.casefold()
        for tool, agent in self.agents.items():
            if agent.id == name_or_id or agent.name.casefold() == wanted:
                return tool, agent
        return None

    def _exposed(self, agent: Agent) -> bool:
        return (
            not self._allow
            or agent.id.casefold() in self._allow
            or agent.name.casefold() in self._allow
        )

    async def refresh(self) -> bool:
        """Reload the agent list; True when the tools changed.

        Raises:
            UpstreamError: the list could not be read.
        """
        agents = [a for a in await self.directory.agents(fresh=True) if self._exposed(a)]
        named = tool_names(agents)
        tools = [agent_tool(name, named[name]) for name in sorted(named)]
        if tools == self.tools:
            return False
        self.agents, self.tools = {name: named[name] for name in sorted(named)}, tools
        return True

    async def refresh_or_note(self) -> bool:
        """`refresh`, keeping why it failed in `problem` (and the last good list)."""
        try:
            changed = await self.refresh()
        except errors.UpstreamError as exc:
            self.problem = _describe(exc, self.directory.client.config.base_url)
            logger.warning("could not list the agents: %s", self.problem)
            return False
        self.problem = None
        return changed

    async def watch(self, interval: float) -> None:
        """Refresh every `interval` seconds until cancelled; tell the listeners on change."""
        while True:
            await anyio.sleep(interval)
            if await self.refresh_or_note():
                logger.info("agent list changed: %d tools", len(self.tools))
                for listener in self._listeners:
                    await listener()


def _describe(exc: errors.UpstreamError, base_url: str) -> str:
    """The failure in the user's terms: what to fix, and where."""
    if isinstance(exc, errors.AuthenticationError | errors.PermissionDeniedError):
        return (
            f"the agent platform at {base_url} refused the API key "
            f"(HTTP {exc.status_code}); set XPANDER_API_KEY (or [upstream] api_key) to a valid key"
        )
    if isinstance(exc, errors.UpstreamStatusError):
        return f"the agent platform at {base_url} answered HTTP {exc.status_code}: {exc}"
    return f"could not reach the agent platform at {base_url}: {exc}"
