"""The floor the SDK allows: a minimal hand-written `MCPServer` proxy, one tool per agent,
each calling `AgentClient` and returning the answer. `bench/mcp_overhead.py` runs it.

Usage: `python bench/_mcp_proxy.py stdio|http|http-stateless` with BRIDGE_UPSTREAM__BASE_URL
and BRIDGE_UPSTREAM__API_KEY set; over HTTP it prints `MCP endpoint: URL` on stderr.
"""

from __future__ import annotations

import logging
import os
import socket
import sys

import anyio
import uvicorn
from mcp.server.mcpserver import MCPServer

from bridge.client import AgentClient

logging.getLogger("httpx").setLevel(logging.WARNING)


def _tool(client: AgentClient, agent_id: str):  # type: ignore[no-untyped-def]
    async def ask(message: str) -> str:
        async with client.stream(agent_id, message, source="mcp") as run:
            task = await run.result()
        return task.result or ""

    return ask


async def main(transport: str) -> None:
    client = AgentClient(
        base_url=os.environ["BRIDGE_UPSTREAM__BASE_URL"],
        api_key=os.environ["BRIDGE_UPSTREAM__API_KEY"],
    )
    server = MCPServer("proxy")
    async with client:
        for agent in await client.list_agents():
            server.add_tool(_tool(client, agent.id), name=agent.name, structured_output=False)
        if transport == "stdio":
            await server.run_stdio_async()
            return
        listener = socket.socket()
        listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        listener.bind(("127.0.0.1", 0))
        app = server.streamable_http_app(stateless_http=transport == "http-stateless")
        config = uvicorn.Config(app, log_level="warning")
        print(f"MCP endpoint: http://127.0.0.1:{listener.getsockname()[1]}/mcp", file=sys.stderr)
        sys.stderr.flush()
        await uvicorn.Server(config).serve(sockets=[listener])


if __name__ == "__main__":
    anyio.run(main, sys.argv[1])
