"""A refused key or an unreachable platform is visible in the IDE, not only in the server's log."""

from __future__ import annotations

import socket

import mcp_types as types
import pytest
from mcp import Client

from bridge.emulator import Emulator
from tests.mcp.conftest import serving, stdio_parameters

pytestmark = pytest.mark.anyio


def _closed_port_url() -> str:
    """A loopback URL nothing listens on (the port was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


async def test_a_refused_key_is_told_at_initialize_in_a_log_message_and_in_results(
    emulator: Emulator,
) -> None:
    logged: list[types.LoggingMessageNotificationParams] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logged.append(params)

    async with (
        serving(emulator, api_key="wrong-key") as served,
        Client(served.url, mode="legacy", logging_callback=on_log) as client,
    ):
        instructions = client.instructions or ""
        await client.list_tools()
        called = await client.call_tool("echo", {"message": "hello?"})
        started = await client.call_tool("start_run", {"agent": "echo", "message": "hello?"})
    assert "refused the API key" in instructions
    assert emulator.base_url in instructions
    assert logged and logged[0].level == "error"
    assert "refused the API key" in str(logged[0].data)
    assert called.is_error is True
    assert "refused the API key" in called.content[0].text
    assert started.is_error is True
    assert "refused the API key" in started.content[0].text


async def test_an_unreachable_platform_is_named_with_its_url_over_stdio(emulator: Emulator) -> None:
    url = _closed_port_url()
    parameters = stdio_parameters(emulator, BRIDGE_UPSTREAM__BASE_URL=url)
    async with Client(parameters, mode="legacy") as client:
        instructions = client.instructions or ""
        called = await client.call_tool("echo", {"message": "anyone?"})
    assert f"could not reach the agent platform at {url}" in instructions
    assert called.is_error is True
    assert url in called.content[0].text
