"""What a tool call keeps in the store while its run goes on: no in-flight record (a call is
not delivered after a crash), and for a one-shot call (no session, no handle) no thread."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client

from bridge.emulator import Emulator
from tests.mcp.conftest import serving

pytestmark = pytest.mark.anyio


async def _paused(client: Client, emulator: Emulator) -> tuple[str, str]:
    """Call the approval agent; returns (run id, task id) of the run left waiting."""
    result = await client.call_tool("approver", {"message": "deploy"})
    assert result.structured_content is not None
    assert result.structured_content["status"] == "paused"
    return result.structured_content["run"], result.structured_content["task_id"]


async def _finish(client: Client, emulator: Emulator, run: str, task_id: str) -> None:
    emulator.resume(task_id, approved=True)
    state = await client.call_tool("get_run", {"run": run, "wait": 10})
    assert state.structured_content is not None
    assert state.structured_content["answer"] == "Approved. Done: deploy"


async def test_a_stateless_call_stores_neither_a_turn_record_nor_a_thread(
    emulator: Emulator,
) -> None:
    async with (
        serving(emulator, stateless=True, user_email="dev@example.com") as served,
        Client(served.url, mode="legacy") as client,
    ):
        store = served.runtime.conversations.store
        run, task_id = await _paused(client, emulator)
        assert await store.list_turns() == []
        assert await store.delete_threads("mcp|") == 0
        await _finish(client, emulator, run, task_id)


async def test_a_session_call_keeps_its_thread_and_no_turn_record(
    bridge: Any, emulator: Emulator
) -> None:
    async with Client(bridge.url, mode="legacy") as client:
        run, task_id = await _paused(client, emulator)
        assert await bridge.runtime.conversations.store.list_turns() == []
        await _finish(client, emulator, run, task_id)
        again = await client.call_tool("approver", {"message": "deploy again"})
    assert again.structured_content is not None
    assert again.structured_content["task_id"] == task_id
