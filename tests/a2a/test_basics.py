"""The A2A adapter driven by the official SDK client over real HTTP: cards and sends."""

from __future__ import annotations

import httpx
import pytest
from a2a.client import A2ACardResolver
from a2a.types.a2a_pb2 import TaskState

from bridge.emulator import Emulator
from tests.a2a.conftest import (
    TOKENS,
    Bridge,
    a2a_client,
    answer_of,
    final_task,
    serving,
    user_message,
)

pytestmark = pytest.mark.anyio


async def test_each_agent_has_a_card_at_its_well_known_path_and_the_index_lists_them(
    bridge: Bridge,
) -> None:
    async with httpx.AsyncClient() as http:
        index = (await http.get(f"{bridge.base}/a2a/")).json()
        card = await A2ACardResolver(http, bridge.agent_url("echo")).get_agent_card()
    names = {entry["name"] for entry in index["agents"]}
    assert {"echo", "writer", "approver", "slow"} <= names
    echo = next(entry for entry in index["agents"] if entry["name"] == "echo")
    assert echo["card"] == f"{bridge.base}/a2a/echo/.well-known/agent-card.json"
    assert card.name == "echo"
    assert card.description.startswith("Answers with your message")
    assert card.capabilities.streaming is True
    assert card.capabilities.push_notifications is True
    assert [i.url for i in card.supported_interfaces] == [
        f"{bridge.base}/a2a/echo/",
        f"{bridge.base}/a2a/echo/rest",
    ]
    assert [i.protocol_binding for i in card.supported_interfaces] == ["JSONRPC", "HTTP+JSON"]
    assert card.security_schemes["bearer"].http_auth_security_scheme.scheme == "Bearer"
    assert card.skills[0].id == "echo"


async def test_blocking_send_answers_with_a_completed_task_invoked_as_a2a_for_the_caller(
    bridge: Bridge, emulator: Emulator
) -> None:
    async with a2a_client(bridge.agent_url("echo"), streaming=False) as client:
        task = await final_task(client, user_message("hello over a2a"))
    assert task.status.state == TaskState.TASK_STATE_COMPLETED
    assert answer_of(task) == "hello over a2a"
    invoke = emulator.invokes(agent="echo")[-1].json
    assert invoke["source"] == "a2a"
    assert invoke["input"]["user"]["email"] == "alice@example.com"


async def test_cards_use_the_public_url_and_the_push_setting(emulator: Emulator) -> None:
    public = "https://bridge.example.com"
    async with (
        serving(emulator, tokens=TOKENS, public_url=public, push_notifications=False) as bridge,
        httpx.AsyncClient() as http,
    ):
        card = await A2ACardResolver(http, bridge.agent_url("echo")).get_agent_card()
        index = (await http.get(f"{bridge.base}/a2a/")).json()
    assert [i.url for i in card.supported_interfaces] == [
        f"{public}/a2a/echo/",
        f"{public}/a2a/echo/rest",
    ]
    assert card.capabilities.push_notifications is False
    assert index["agents"][0]["card"].startswith(f"{public}/a2a/")


async def test_a_failing_agent_ends_its_task_failed_with_what_the_platform_said(
    bridge: Bridge,
) -> None:
    async with a2a_client(bridge.agent_url("failing"), streaming=False) as client:
        failed = await final_task(client, user_message("please"))
    assert failed.status.state == TaskState.TASK_STATE_FAILED
    note = failed.status.message.parts[0].text
    assert note.startswith("⚠️ The agent could not finish (failed): Scripted failure")
