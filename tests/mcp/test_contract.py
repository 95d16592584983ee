"""The MCP adapter keeps the core's adapter contract (bridge.testing.check_adapter_contract)."""

from __future__ import annotations

import pytest
from bridge_mcp import MCPAdapter, MCPConfig
from mcp import Client

from bridge.emulator import Emulator
from bridge.runtime import Runtime
from bridge.testing import check_adapter_contract
from tests.mcp.conftest import bridge_settings

pytestmark = pytest.mark.anyio


async def test_the_adapter_keeps_the_adapter_contract_and_renders_upstream_failures(
    emulator: Emulator,
) -> None:
    config = MCPConfig.model_validate({"heartbeat_interval": 0.1})
    results: list[tuple[bool, str]] = []

    async def trigger(runtime: Runtime) -> None:
        async with Client(f"{runtime.http.base_url}{config.path}", mode="legacy") as client:
            called = await client.call_tool("echo", {"message": "are you up?"})
        results.append((called.is_error is True, called.content[0].text))

    adapter = MCPAdapter(config)
    await check_adapter_contract(
        adapter, bridge_settings(emulator), emulator=emulator, trigger=trigger
    )
    [(is_error, text)] = results
    assert is_error, text
