"""Fixtures: the platform emulator, and the bridge serving MCP over HTTP (in-process) or stdio."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest
from bridge_mcp import MCPAdapter, MCPConfig
from mcp import StdioServerParameters

from bridge.config import load_settings
from bridge.emulator import Emulator
from bridge.runtime import Runtime, serve
from bridge.testing import open_emulator

API_KEY = "test-key"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with open_emulator(
        api_key=API_KEY, keepalive_interval=0.05, slow_silence=1.0, login_timeout=5.0
    ) as emu:
        yield emu


def bridge_settings(
    emulator: Emulator,
    *,
    store: str = "memory://",
    api_key: str = API_KEY,
    base_url: str | None = None,
    **http: Any,
) -> Any:
    upstream = {"base_url": base_url or emulator.base_url, "api_key": api_key}
    return load_settings(
        None,
        overrides={
            "upstream": {**upstream, "idle_timeout": 10.0, "connect_timeout": 5.0},
            "store": {"url": store},
            "http": {"host": "127.0.0.1", "port": 0, **http},
        },
        environ={},
    )


@dataclass
class Bridge:
    runtime: Runtime
    config: MCPConfig

    @property
    def url(self) -> str:
        return f"{self.runtime.http.base_url}{self.config.path}"


@asynccontextmanager
async def serving(
    emulator: Emulator,
    *,
    store: str = "memory://",
    api_key: str = API_KEY,
    base_url: str | None = None,
    **config: Any,
) -> AsyncIterator[Bridge]:
    """`bridge serve` with only the MCP adapter, on 127.0.0.1:<free port>."""
    options: dict[str, Any] = {"heartbeat_interval": 0.1, **config}
    mcp_config = MCPConfig.model_validate(options)
    settings = bridge_settings(emulator, store=store, api_key=api_key, base_url=base_url)

    async def run(*, task_status: anyio.abc.TaskStatus[Runtime]) -> None:
        await serve(settings, adapters=[MCPAdapter(mcp_config)], task_status=task_status)

    async with anyio.create_task_group() as group:
        runtime = await group.start(run)
        yield Bridge(runtime, mcp_config)
        group.cancel_scope.cancel()


@pytest.fixture
async def bridge(emulator: Emulator) -> AsyncIterator[Bridge]:
    async with serving(emulator, user_email="dev@example.com") as served:
        yield served


def bridge_script() -> str:
    script = Path(sys.executable).parent / "bridge"
    if not script.exists():
        pytest.fail(f"the `bridge` script is missing next to {sys.executable}: run `uv sync`")
    return str(script)


def stdio_parameters(emulator: Emulator, *args: str, **env: str) -> StdioServerParameters:
    """`bridge mcp` as an IDE starts it, pointed at the emulator."""
    environment = {
        **os.environ,
        "BRIDGE_UPSTREAM__BASE_URL": emulator.base_url,
        "BRIDGE_UPSTREAM__API_KEY": API_KEY,
        "BRIDGE_STORE__URL": "memory://",
        "BRIDGE_ADAPTERS__MCP__HEARTBEAT_INTERVAL": "0.1",
        **env,
    }
    return StdioServerParameters(command=bridge_script(), args=["mcp", *args], env=environment)
