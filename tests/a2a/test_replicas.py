"""Several replicas on one store: subscribe from any replica, recovery of a turn whose
replica died, graceful drain; the official client over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from a2a.types.a2a_pb2 import GetTaskRequest, SubscribeToTaskRequest, Task, TaskState
from a2a.utils.errors import UnsupportedOperationError

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

FAST_RECOVERY = {"lock_lease": 1.0, "recovery_interval": 0.2}


@asynccontextmanager
async def replica(emulator: Emulator, store: str, **options: Any) -> AsyncIterator[Bridge]:
    async with serving(
        emulator, store=store, conversations=FAST_RECOVERY, tokens=TOKENS, **options
    ) as served:
        yield served


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'bridge.db'}"


async def start_slow_task(bridge: Bridge, text: str) -> Task:
    async with a2a_client(bridge.agent_url("slow"), streaming=False) as client:
        request = user_message(text)
        request.configuration.return_immediately = True
        return await final_task(client, request)


async def wait_for_step(bridge: Bridge, task_id: str, step: str) -> None:
    """Until the task shows a step naming `step` (the turn is then running upstream)."""
    async with a2a_client(bridge.agent_url("slow")) as client:
        with anyio.fail_after(10):
            async for event in client.subscribe(SubscribeToTaskRequest(id=task_id)):
                parts = event.status_update.status.message.parts
                if any(step in part.text for part in parts):
                    return


async def follow_to_the_end(bridge: Bridge, task_id: str) -> tuple[list[Any], Task]:
    async with a2a_client(bridge.agent_url("slow")) as client:
        with anyio.fail_after(20):
            events = [e async for e in client.subscribe(SubscribeToTaskRequest(id=task_id))]
        return events, await client.get_task(GetTaskRequest(id=task_id))


async def test_a_task_started_on_one_replica_can_be_followed_from_another(
    emulator: Emulator, tmp_path: Path
) -> None:
    store = sqlite_url(tmp_path)
    async with replica(emulator, store) as first, replica(emulator, store) as second:
        task = await start_slow_task(first, "seen from afar")
        events, done = await follow_to_the_end(second, task.id)
    assert events[0].task.id == task.id
    assert events[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED
    assert any(e.HasField("artifact_update") for e in events)
    assert answer_of(done) == "Sorry for the wait. Done: seen from afar"


async def test_a_turn_whose_replica_died_is_finished_and_delivered_by_another(
    emulator: Emulator, tmp_path: Path
) -> None:
    store = sqlite_url(tmp_path)
    async with replica(emulator, store) as survivor:
        async with replica(emulator, store) as doomed:
            task = await start_slow_task(doomed, "outlive me")
            await wait_for_step(doomed, task.id, "slow_tool")
        # `doomed` is gone mid-turn, without stopping the upstream task.
        [upstream] = list(emulator.tasks)
        # A client subscribes (or, once the task is over, reads it) on the survivor.
        async with a2a_client(survivor.agent_url("slow")) as client:
            events = []
            with anyio.fail_after(20):
                try:
                    async for event in client.subscribe(SubscribeToTaskRequest(id=task.id)):
                        events.append(event)
                except UnsupportedOperationError:
                    pass  # already finished when the subscription arrived
            done = await client.get_task(GetTaskRequest(id=task.id))
    assert emulator.tasks[upstream].status == "completed"
    assert done.status.state == TaskState.TASK_STATE_COMPLETED
    if events:
        assert events[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED
    assert answer_of(done) == "Sorry for the wait. Done: outlive me"
    assert [r for r in emulator.requests if r.path.endswith("/stop")] == []


async def test_drain_lets_running_turns_finish_before_shutting_down(
    emulator: Emulator, tmp_path: Path
) -> None:
    store = sqlite_url(tmp_path)
    async with replica(emulator, store) as other:
        async with replica(emulator, store) as leaving:
            task = await start_slow_task(leaving, "finish before you go")
            with anyio.fail_after(20):
                await leaving.runtime.drain()
        async with a2a_client(other.agent_url("slow")) as client:
            done = await client.get_task(GetTaskRequest(id=task.id))
    assert done.status.state == TaskState.TASK_STATE_COMPLETED
    assert answer_of(done) == "Sorry for the wait. Done: finish before you go"


async def test_a_task_waiting_on_the_user_can_be_resumed_on_another_replica(
    emulator: Emulator, tmp_path: Path
) -> None:
    store = sqlite_url(tmp_path)
    async with replica(emulator, store) as first, replica(emulator, store) as second:
        async with a2a_client(first.agent_url("approver"), streaming=False) as client:
            paused = await final_task(client, user_message("rotate the keys"))
        assert paused.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
        [upstream] = list(emulator.tasks)
        emulator.resume(upstream, approved=True)
        async with a2a_client(second.agent_url("approver"), streaming=False) as client:
            resumed = await final_task(client, user_message("approved", task_id=paused.id))
    assert resumed.status.state == TaskState.TASK_STATE_COMPLETED
    assert answer_of(resumed) == "Approved. Done: rotate the keys"
    assert len(emulator.invokes(agent="approver")) == 1
