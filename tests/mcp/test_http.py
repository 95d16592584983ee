"""The MCP adapter over streamable HTTP, driven by the official SDK client."""

from __future__ import annotations

import json

import anyio
import mcp_types as types
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from bridge.emulator import Emulator, Fault
from tests.mcp.conftest import Bridge, serving

pytestmark = pytest.mark.anyio


class Steps:
    """Progress messages of one call, in arrival order."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.values: list[float] = []
        self.seen = anyio.Event()
        self.wanted: str | None = None

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.values.append(progress)
        self.messages.append(message or "")
        if self.wanted and message and self.wanted in message:
            self.seen.set()


async def test_every_agent_is_listed_as_an_open_world_tool_with_schemas(bridge: Bridge) -> None:
    async with Client(bridge.url, mode="legacy") as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) >= {"echo", "writer", "researcher", "slow", "failing", "approver", "signin"}
    assert {"start_run", "get_run", "cancel_run"} <= set(tools)
    echo = tools["echo"]
    assert echo.title == "echo"
    assert echo.description and echo.description.startswith("Answers with your message")
    assert echo.annotations is not None
    assert echo.annotations.open_world_hint is True
    assert echo.annotations.read_only_hint is False
    assert echo.input_schema["required"] == ["message"]
    assert set(echo.input_schema["properties"]) == {"message", "conversation", "files"}
    assert echo.output_schema is not None
    assert set(echo.output_schema["required"]) == {"answer", "conversation", "task_id", "status"}


async def test_allow_list_exposes_only_the_named_agents(emulator: Emulator) -> None:
    async with (
        serving(emulator, agents=["echo", "Researcher"]) as served,
        Client(served.url, mode="legacy") as client,
    ):
        names = {tool.name for tool in (await client.list_tools()).tools}
    assert names == {"echo", "researcher", "start_run", "get_run", "cancel_run"}


async def test_call_answers_with_text_and_a_sealed_handle_and_invokes_as_mcp_for_the_user(
    bridge: Bridge, emulator: Emulator
) -> None:
    async with Client(bridge.url, mode="legacy") as client:
        result = await client.call_tool("echo", {"message": "hello over http"})
    assert result.is_error is False
    assert isinstance(result.content[0], types.TextContent)
    assert result.structured_content["answer"] == "hello over http"
    assert json.loads(result.content[0].text) == result.structured_content
    assert len(result.content) == 1
    structured = result.structured_content
    assert structured["answer"] == "hello over http"
    assert structured["status"] == "completed"
    assert structured["conversation"].startswith("cv1.")
    invoke = emulator.invokes(agent="echo")[-1].json
    assert invoke["source"] == "mcp"
    assert invoke["input"]["user"]["email"] == "dev@example.com"
    assert structured["task_id"] in emulator.tasks


async def test_calls_in_one_session_continue_one_thread_and_other_sessions_start_their_own(
    bridge: Bridge, emulator: Emulator
) -> None:
    async with Client(bridge.url, mode="legacy") as client:
        first = await client.call_tool("echo", {"message": "one"})
        second = await client.call_tool("echo", {"message": "two"})
    async with Client(bridge.url, mode="legacy") as other:
        third = await other.call_tool("echo", {"message": "three"})
    assert second.structured_content["task_id"] == first.structured_content["task_id"]
    assert third.structured_content["task_id"] != first.structured_content["task_id"]
    assert emulator.invokes(agent="echo")[1].thread_id == first.structured_content["task_id"]


async def test_a_handle_continues_its_thread_from_another_session(bridge: Bridge) -> None:
    async with Client(bridge.url, mode="legacy") as client:
        first = await client.call_tool("echo", {"message": "remember me"})
    handle = first.structured_content["conversation"]
    async with Client(bridge.url, mode="legacy") as other:
        again = await other.call_tool("echo", {"message": "still there?", "conversation": handle})
        after = await other.call_tool("echo", {"message": "and now?"})
    assert again.structured_content["task_id"] == first.structured_content["task_id"]
    assert after.structured_content["task_id"] == first.structured_content["task_id"]


async def test_a_forged_handle_is_refused_with_a_tool_error(
    bridge: Bridge, emulator: Emulator
) -> None:
    async with Client(bridge.url, mode="legacy") as client:
        real = await client.call_tool("echo", {"message": "x"})
        body, _, mac = real.structured_content["conversation"].rpartition(".")
        forged = f"{body}.{'A' * len(mac)}"
        refused = await client.call_tool("echo", {"message": "y", "conversation": forged})
        wrong_agent = await client.call_tool(
            "researcher", {"message": "z", "conversation": real.structured_content["conversation"]}
        )
    assert refused.is_error is True
    assert "cannot continue that conversation" in refused.content[0].text
    assert wrong_agent.is_error is True
    assert len(emulator.invokes(agent="echo")) == 1
    assert emulator.invokes(agent="researcher") == []


async def test_progress_reports_every_step_before_the_result(bridge: Bridge) -> None:
    steps = Steps()
    async with Client(bridge.url, mode="legacy") as client:
        result = await client.call_tool(
            "researcher", {"message": "otters"}, progress_callback=steps
        )
    answer = result.structured_content["answer"]
    assert steps.messages == [
        "thinking: Plan",
        "calling tool search_web",
        "tool search_web done",
        "thinking: Check results",
        f"writing… {len(answer)} characters",
    ]
    assert steps.values == sorted(set(steps.values))


async def test_a_silent_upstream_gets_heartbeats(bridge: Bridge) -> None:
    steps = Steps()
    async with Client(bridge.url, mode="legacy") as client:
        result = await client.call_tool(
            "slow", {"message": "take your time"}, progress_callback=steps
        )
    assert result.is_error is False
    assert any(
        message.startswith("still working: calling tool slow_tool") for message in steps.messages
    )
    assert steps.messages[-1].startswith("writing…")


async def test_cancelling_a_call_stops_the_upstream_task(
    bridge: Bridge, emulator: Emulator
) -> None:
    steps = Steps()
    steps.wanted = "calling tool slow_tool"
    async with Client(bridge.url, mode="legacy") as client:
        async with anyio.create_task_group() as group:
            group.start_soon(client.call_tool, "slow", {"message": "never mind"}, None, steps)
            with anyio.fail_after(10):
                await steps.seen.wait()
            group.cancel_scope.cancel()
        [task_id] = list(emulator.tasks)
        with anyio.fail_after(10):
            await emulator.wait_for_status(task_id, "stopped")
        assert await client.call_tool("echo", {"message": "still serving"})
    stops = [
        r for r in emulator.requests if r.method == "POST" and r.path == f"/v1/tasks/{task_id}/stop"
    ]
    assert len(stops) == 1


async def test_a_failing_agent_becomes_an_error_result(bridge: Bridge) -> None:
    async with Client(bridge.url, mode="legacy") as client:
        failed = await client.call_tool("failing", {"message": "please"})
        crashed = await client.call_tool("failing", {"message": "raise an error"})
        fine = await client.call_tool("echo", {"message": "after failures"})
    assert failed.is_error is True
    assert failed.structured_content["status"] == "failed"
    assert "Scripted failure" in failed.structured_content["error"]
    assert crashed.structured_content["status"] == "error"
    assert fine.is_error is False


async def test_an_unreachable_platform_becomes_an_error_result(
    bridge: Bridge, emulator: Emulator
) -> None:
    emulator.inject(Fault("status", status=500, path="/invoke/stream", times=10))
    async with Client(bridge.url, mode="legacy") as client:
        result = await client.call_tool("echo", {"message": "anyone?"})
    assert result.is_error is True
    assert "did not answer" in result.content[0].text


async def test_unknown_tools_are_protocol_errors_and_bad_arguments_are_tool_errors(
    bridge: Bridge, emulator: Emulator
) -> None:
    async with Client(bridge.url, mode="legacy") as client:
        with pytest.raises(MCPError) as unknown:
            await client.call_tool("no_such_agent", {"message": "hi"})
        missing = await client.call_tool("echo", {})
        extra = await client.call_tool("echo", {"message": "hi", "colour": "blue"})
    assert unknown.value.code == types.INVALID_PARAMS
    assert missing.is_error is True
    assert "message" in missing.content[0].text
    assert extra.is_error is True
    assert "colour" in extra.content[0].text
    assert emulator.invokes() == []
