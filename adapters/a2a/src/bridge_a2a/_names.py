"""Which agents are exposed and under which name: the same lowercase names as the MCP tools."""

from __future__ import annotations

from bridge_mcp import tool_names

from bridge.models import Agent

__all__ = ["exposed_names"]


def exposed_names(agents: list[Agent], allow: list[str]) -> dict[str, Agent]:
    """Name → agent for the agents the allow-list admits (every agent when it is empty)."""
    wanted = {entry.casefold() for entry in allow}
    kept = [
        agent
        for agent in agents
        if not wanted or agent.id.casefold() in wanted or agent.name.casefold() in wanted
    ]
    return tool_names(kept)
