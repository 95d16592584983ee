"""The emulator's agent registry: agents by id, lookup by name, newest-first listing."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from bridge.emulator._agents import AgentSpec
from bridge.emulator._common import agent_id, utc_iso

__all__ = ["AgentRegistry"]

# Registration times are synthetic and deterministic: this instant plus one second per agent.
_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


class AgentRegistry(dict[str, AgentSpec]):
    """Agents keyed by id; `add` stamps `created_at` so that later agents list first."""

    def __init__(self) -> None:
        super().__init__()
        self._sequence = itertools.count()

    def add(self, spec: AgentSpec | str) -> AgentSpec:
        """Register an agent; a bare name gives an echo agent."""
        spec = AgentSpec(spec, "Answers with your message.") if isinstance(spec, str) else spec
        if not spec.created_at:
            moment = _EPOCH + timedelta(seconds=next(self._sequence))
            spec.created_at = utc_iso(moment.timestamp())
        self[spec.id] = spec
        return spec

    def find(self, name_or_id: str) -> AgentSpec:
        """An agent by id or name.

        Raises:
            KeyError: no such agent.
        """
        found = self.get(name_or_id) or self.get(agent_id(name_or_id))
        if found is None:
            found = next((spec for spec in self.values() if spec.name == name_or_id), None)
        if found is None:
            raise KeyError(name_or_id)
        return found

    def remove(self, name_or_id: str) -> AgentSpec:
        """Unregister an agent.

        Raises:
            KeyError: no such agent.
        """
        return self.pop(self.find(name_or_id).id)

    def ids_for(self, name_or_id: str) -> set[str]:
        """Every id `name_or_id` may refer to, including agents removed since."""
        ids = {name_or_id, agent_id(name_or_id)}
        ids.update(spec.id for spec in self.values() if spec.name == name_or_id)
        return ids

    def listed(self) -> list[AgentSpec]:
        """Newest first, as `GET /v1/agents` lists them."""
        return sorted(self.values(), key=lambda spec: spec.created_at, reverse=True)
