"""The bridge's MCP adapter: every agent of the organisation as an MCP tool for IDE clients."""

from bridge_mcp._config import MCPConfig
from bridge_mcp._names import tool_names
from bridge_mcp.adapter import MCPAdapter

__all__ = ["MCPAdapter", "MCPConfig", "tool_names"]
