"""Calls within client timeouts: a call budget, and runs followed from any replica."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from mcp import Client

from bridge.emulator import Emulator
from bridge.testing import open_emulator
from tests.mcp.conftest import API_KEY, serving

pytestmark = pytest.mark.anyio


@pytest.fixture
async def patient() -> AsyncIterator[Emulator]:
    """An emulator whose `slow` agent stays silent far longer than any budget below."""
    async with open_emulator(api_key=API_KEY, keepalive_interval=0.05, slow_silence=60.0) as emu:
        yield emu


async def test_a_call_still_running_at_its_budget_returns_the_run_to_follow(
    patient: Emulator,
) -> None:
    async with (
        serving(patient, call_budget=0.3) as served,
        Client(served.url, mode="legacy") as client,
    ):
        running = await client.call_tool("slow", {"message": "take your time"})
        run = running.structured_content["run"]
        state = await client.call_tool("get_run", {"run": run})
        stopped = await client.call_tool("cancel_run", {"run": run})
    assert running.is_error is False
    assert running.structured_content["status"] == "running"
    assert f"get_run(run={run!r}" in running.structured_content["note"]
    assert state.structured_content["status"] == "working"
    assert stopped.structured_content["status"] == "stopped"
    [task_id] = list(patient.tasks)
    with anyio.fail_after(10):
        await patient.wait_for_status(task_id, "stopped")


async def test_without_a_budget_the_call_follows_the_agent_to_its_end(emulator: Emulator) -> None:
    async with (
        serving(emulator, call_budget=0) as served,
        Client(served.url, mode="legacy") as client,
    ):
        done = await client.call_tool("slow", {"message": "wait for it"})
    assert done.structured_content["status"] == "completed"


async def test_run_ids_work_on_any_replica_sharing_the_store(
    patient: Emulator, tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path / 'shared.db'}"
    async with (
        serving(patient, store=store, call_budget=2.0) as one,
        serving(patient, store=store) as two,
        Client(one.url, mode="legacy") as first,
        Client(two.url, mode="legacy") as second,
    ):
        started = await first.call_tool("slow", {"message": "elsewhere"})
        run = started.structured_content["run"]
        seen = await second.call_tool("get_run", {"run": run})
        stopped = await second.call_tool("cancel_run", {"run": run})
        final = await first.call_tool("get_run", {"run": run, "wait": 10})
        foreign = await second.call_tool("get_run", {"run": "run_unknown"})
    assert started.structured_content["task_id"] is not None
    assert seen.structured_content["status"] == "working"
    assert stopped.structured_content["status"] == "stopped"
    assert final.structured_content["status"] == "stopped"
    assert foreign.is_error is True
