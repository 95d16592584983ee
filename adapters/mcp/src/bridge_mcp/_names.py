"""Tool names derived from agent names: `[a-z0-9_-]`, at most 64 characters, stable, unique."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable

from bridge.models import Agent

__all__ = ["MAX_NAME", "RESERVED", "tool_names"]

MAX_NAME = 64
RESERVED = frozenset({"start_run", "get_run", "cancel_run"})
_OUTSIDE = re.compile(r"[^a-z0-9_-]+")


def base_name(name: str) -> str:
    """Lowercase; every run of characters outside `[a-z0-9_-]` becomes one `_`."""
    cleaned = _OUTSIDE.sub("_", name.lower())[:MAX_NAME]
    return cleaned if cleaned.strip("_") else "agent"


def _suffixed(base: str, agent_id: str, length: int) -> str:
    suffix = _OUTSIDE.sub("_", agent_id.lower())[:length]
    return f"{base[: MAX_NAME - len(suffix) - 1]}_{suffix}"


def tool_names(agents: Iterable[Agent]) -> dict[str, Agent]:
    """Tool name → agent. Depends only on the set of agents, never on listing order:
    names shared by several agents (or with a run tool) get a suffix from the agent id."""
    groups: dict[str, list[Agent]] = defaultdict(list)
    for agent in sorted(agents, key=lambda a: a.id):
        groups[base_name(agent.name)].append(agent)
    names: dict[str, Agent] = {}
    for base, members in sorted(groups.items()):
        if len(members) == 1 and base not in RESERVED:
            names.setdefault(base, members[0])
            continue
        length = 8
        while True:
            candidates = {_suffixed(base, agent.id, length): agent for agent in members}
            if len(candidates) == len(members) or length >= MAX_NAME:
                break
            length += 4
        for name, agent in candidates.items():
            if name in names:  # a suffixed name equal to another agent's plain name
                name = _suffixed(base, agent.id, MAX_NAME)
            names.setdefault(name, agent)
    return names
