"""Contexts and tasks belong to the caller: forged or other callers' ids are not found;
per-user rate; the unauthenticated (loopback) mode."""

from __future__ import annotations

import httpx
import pytest
from a2a.types.a2a_pb2 import CancelTaskRequest, GetTaskRequest, TaskState
from a2a.utils.errors import InvalidRequestError, TaskNotFoundError

from bridge.emulator import Emulator
from tests.a2a.conftest import (
    OTHER_TOKEN,
    TOKENS,
    Bridge,
    a2a_client,
    answer_of,
    final_task,
    serving,
    user_message,
)

pytestmark = pytest.mark.anyio


async def test_a_forged_context_id_is_not_found(bridge: Bridge, emulator: Emulator) -> None:
    async with a2a_client(bridge.agent_url("echo"), streaming=False) as client:
        with pytest.raises(TaskNotFoundError):
            await final_task(client, user_message("hi", context_id="made-up-context"))
    assert emulator.invokes(agent="echo") == []


@pytest.mark.parametrize("bindings", [("JSONRPC",), ("HTTP+JSON",)])
async def test_another_callers_context_and_task_are_not_found(
    bridge: Bridge, emulator: Emulator, bindings: tuple[str, ...]
) -> None:
    url = bridge.agent_url("echo")
    async with a2a_client(url, streaming=False, bindings=bindings) as alice:
        mine = await final_task(alice, user_message("alice's secret"))
    async with a2a_client(url, OTHER_TOKEN, streaming=False, bindings=bindings) as bob:
        with pytest.raises(TaskNotFoundError):
            await final_task(bob, user_message("continue", context_id=mine.context_id))
        with pytest.raises(TaskNotFoundError):
            await bob.get_task(GetTaskRequest(id=mine.id))
        with pytest.raises(TaskNotFoundError):
            await bob.cancel_task(CancelTaskRequest(id=mine.id))
        with pytest.raises(TaskNotFoundError):
            await final_task(bob, user_message("resume", task_id=mine.id))
    assert len(emulator.invokes(agent="echo")) == 1


async def test_a_task_is_not_found_through_another_agents_endpoint(bridge: Bridge) -> None:
    async with a2a_client(bridge.agent_url("echo"), streaming=False) as client:
        task = await final_task(client, user_message("on echo"))
    async with a2a_client(bridge.agent_url("writer"), streaming=False) as client:
        with pytest.raises(TaskNotFoundError):
            await client.get_task(GetTaskRequest(id=task.id))
        with pytest.raises(TaskNotFoundError):
            await final_task(client, user_message("hi", context_id=task.context_id))


async def test_each_user_gets_a_bounded_message_rate(emulator: Emulator) -> None:
    async with (
        serving(emulator, tokens=TOKENS, user_rate_limit=2, user_rate_window=3600) as bridge,
        a2a_client(bridge.agent_url("echo"), streaming=False) as alice,
        a2a_client(bridge.agent_url("echo"), OTHER_TOKEN, streaming=False) as bob,
    ):
        for text in ("one", "two"):
            assert answer_of(await final_task(alice, user_message(text))) == text
        with pytest.raises(InvalidRequestError):
            await final_task(alice, user_message("three"))
        assert answer_of(await final_task(bob, user_message("bob's first"))) == "bob's first"
    assert len(emulator.invokes(agent="echo")) == 3


async def test_without_tokens_calls_run_as_the_configured_local_user(emulator: Emulator) -> None:
    async with (
        serving(emulator, user_email="dev@example.com") as bridge,
        a2a_client(bridge.agent_url("echo"), token=None, streaming=False) as client,
    ):
        task = await final_task(client, user_message("no token needed on loopback"))
        card = await client.get_card() if hasattr(client, "get_card") else None
    assert task.status.state == TaskState.TASK_STATE_COMPLETED
    invoke = emulator.invokes(agent="echo")[-1].json
    assert invoke["input"]["user"]["email"] == "dev@example.com"
    assert invoke["source"] == "a2a"
    assert card is None or not card.security_schemes


async def test_without_tokens_a_foreign_host_or_origin_is_refused(emulator: Emulator) -> None:
    """A web page that rebinds its name to 127.0.0.1, or posts from its own origin, cannot
    call the agents of an unauthenticated (loopback) bridge."""
    body = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {}}
    async with serving(emulator) as bridge, httpx.AsyncClient() as http:
        url = bridge.agent_url("echo")
        rebound = await http.post(url, json=body, headers={"Host": "evil.example.com"})
        cross = await http.post(url, json=body, headers={"Origin": "http://evil.example.com"})
        local = await http.post(
            url, json=body, headers={"Origin": "http://localhost:3000", "A2A-Version": "1.0"}
        )
    assert rebound.status_code == 403
    assert cross.status_code == 403
    assert local.status_code == 200  # reached the agent (the empty request is its error)
    assert emulator.invokes(agent="echo") == []
