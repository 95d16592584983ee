"""`bridge mcp` over stdio, as an IDE runs it, driven by the official SDK client."""

from __future__ import annotations

import anyio
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.session import IncomingMessage

from bridge.emulator import Emulator
from tests.mcp.conftest import stdio_parameters

pytestmark = pytest.mark.anyio


async def test_stdio_lists_calls_continues_and_refuses_forged_handles(emulator: Emulator) -> None:
    messages: list[str] = []

    async def progress(value: float, total: float | None, message: str | None) -> None:
        messages.append(message or "")

    async with Client(stdio_parameters(emulator), mode="legacy") as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        first = await client.call_tool(
            "researcher", {"message": "bees"}, progress_callback=progress
        )
        second = await client.call_tool("researcher", {"message": "more bees"})
        forged = await client.call_tool("echo", {"message": "x", "conversation": "cv1.abc.def"})
    assert {"echo", "researcher", "slow", "start_run"} <= names
    assert first.is_error is False
    assert second.structured_content["task_id"] == first.structured_content["task_id"]
    assert messages[0] == "thinking: Plan"
    assert messages[-1] == f"writing… {len(first.structured_content['answer'])} characters"
    assert forged.is_error is True
    assert all(request.json["source"] == "mcp" for request in emulator.invokes())


async def test_stdio_heartbeats_and_cancellation_stop_the_upstream_task(emulator: Emulator) -> None:
    heartbeat = anyio.Event()

    async def progress(value: float, total: float | None, message: str | None) -> None:
        if message and message.startswith("still working"):
            heartbeat.set()

    async with Client(stdio_parameters(emulator), mode="legacy") as client:
        async with anyio.create_task_group() as group:
            group.start_soon(client.call_tool, "slow", {"message": "stop me"}, None, progress)
            with anyio.fail_after(10):
                await heartbeat.wait()
            group.cancel_scope.cancel()
        [task_id] = list(emulator.tasks)
        with anyio.fail_after(10):
            await emulator.wait_for_status(task_id, "stopped")
    stops = [r for r in emulator.requests if r.path == f"/v1/tasks/{task_id}/stop"]
    assert [r.method for r in stops] == ["POST"]


async def test_stdio_clients_are_told_when_the_agent_list_changes(emulator: Emulator) -> None:
    changed = anyio.Event()

    async def on_message(message: IncomingMessage) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            changed.set()

    parameters = stdio_parameters(emulator, BRIDGE_ADAPTERS__MCP__REFRESH_INTERVAL="0.05")
    async with Client(parameters, mode="legacy", message_handler=on_message) as client:
        await client.list_tools()
        emulator.add_agent("Translator")
        with anyio.fail_after(10):
            await changed.wait()
        names = {tool.name for tool in (await client.list_tools()).tools}
    assert "translator" in names
