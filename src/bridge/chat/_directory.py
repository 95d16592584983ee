"""The agent directory: names ↔ ids, refreshed on a TTL, shared by every surface."""

from __future__ import annotations

import time

import anyio

from bridge.client import AgentClient
from bridge.models import Agent

__all__ = ["AgentDirectory"]


class AgentDirectory:
    """The organisation's agents, listed at most once per `ttl` seconds.

    Raises (from every method): `UpstreamError` when the list cannot be fetched and none
    is cached.
    """

    def __init__(self, client: AgentClient, *, ttl: float = 60.0) -> None:
        self.client, self.ttl = client, ttl
        self._agents: list[Agent] = []
        self._fetched_at = float("-inf")
        self._lock = anyio.Lock()

    async def agents(self, *, fresh: bool = False) -> list[Agent]:
        """The agents, listed again when the last list is older than `ttl` or `fresh` is
        asked for (a surface that follows the list on its own interval)."""
        async with self._lock:
            if fresh or time.monotonic() - self._fetched_at >= self.ttl:
                self._agents = await self.client.list_agents()
                self._fetched_at = time.monotonic()
            return list(self._agents)

    async def find(self, name_or_id: str) -> Agent | None:
        """The agent with this id, else this name (case-insensitive), else None."""
        wanted = name_or_id.strip()
        agents = await self.agents()
        for agent in agents:
            if agent.id == wanted:
                return agent
        folded = wanted.casefold()
        return next((a for a in agents if a.name.casefold() == folded), None)

    async def close_matches(self, name: str, *, limit: int = 3) -> list[str]:
        """Agent names that look like `name`, for "did you mean"."""
        import difflib  # only for an error

        names = [agent.name for agent in await self.agents()]
        return difflib.get_close_matches(name, names, n=limit, cutoff=0.5)

    def forget(self) -> None:
        """Fetch the list again on the next look-up."""
        self._fetched_at = float("-inf")
