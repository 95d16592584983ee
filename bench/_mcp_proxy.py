"""The floor the SDK allows: a minimal hand-written `MCPServer` proxy, one tool per agent,
each calling `AgentClient` and returning the answer. `bench/mcp_overhead.py` runs it.

Usage: `python bench/_mcp_proxy.py stdio|http|http-stateless [--continuing]` with
BRIDGE_UPSTREAM__BASE_URL and BRIDGE_UPSTREAM__API_KEY set; over HTTP it prints
`MCP endpoint: URL` on stderr. `--continuing`: each tool's calls continue one thread, one
at a time (as a bridge session's calls do), so the client counts the thread's messages
before each invoke, exactly as the bridge does.
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


def _tool(client: AgentClient, agent_id: str, continuing: bool):  # type: ignore[no-untyped-def]
    thread: str | None = None
    lock = anyio.Lock()

    async def ask(message: str) -> str:
        nonlocal thread
        async with lock if continuing else _NO_LOCK:
            async with client.stream(agent_id, message, thread=thread, source="mcp") as run:
                task = await run.result()
            if continuing:
                thread = task.id
        return task.result or ""

    return ask


class _NoLock:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *_: object) -> None:
        return None


_NO_LOCK = _NoLock()


async def main(transport: str, continuing: bool) -> None:
    client = AgentClient(
        base_url=os.environ["BRIDGE_UPSTREAM__BASE_URL"],
        api_key=os.environ["BRIDGE_UPSTREAM__API_KEY"],
    )
    server = MCPServer("proxy")
    async with client:
        for agent in await client.list_agents():
            server.add_tool(
                _tool(client, agent.id, continuing), name=agent.name, structured_output=False
            )
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
    anyio.run(main, sys.argv[1], "--continuing" in sys.argv[2:])
