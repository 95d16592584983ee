"""The bridge's A2A adapter: every exposed agent as an Agent2Agent agent."""

from bridge_a2a.adapter import A2AAdapter

__all__ = ["A2AAdapter"]
