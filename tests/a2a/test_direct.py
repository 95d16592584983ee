"""A blocking send's task while its turn runs: listed, followed, cancelled, on its replica
and from another one."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import anyio.abc
import pytest
from a2a.client import A2AClientError, Client
from a2a.types.a2a_pb2 import (
    CancelTaskRequest,
    GetTaskRequest,
    ListTasksRequest,
    StreamResponse,
    SubscribeToTaskRequest,
    Task,
    TaskState,
)
from a2a.utils.errors import UnsupportedOperationError

from bridge.emulator import AgentSpec, Emulator, TurnContext
from tests.a2a.conftest import Bridge, a2a_client, answer_of, final_task, user_message
from tests.a2a.test_push import HOOK_SECRET, Webhook, push_config, webhook  # noqa: F401 (a fixture)
from tests.a2a.test_replicas import replica, sqlite_url

pytestmark = pytest.mark.anyio


@dataclass
class Gate:
    """An agent that writes half its answer, then waits for the test to let it finish."""

    started: anyio.Event = field(default_factory=anyio.Event)
    release: anyio.Event = field(default_factory=anyio.Event)

    async def script(self, ctx: TurnContext) -> None:
        ctx.chunk("half ")
        self.started.set()
        await self.release.wait()
        ctx.chunk("done")


@pytest.fixture
def gate(emulator: Emulator) -> Gate:
    gated = Gate()
    emulator.add_agent(AgentSpec("gated", "Answers when the test says so.", gated.script))
    return gated


@pytest.fixture
async def served(emulator: Emulator, gate: Gate) -> AsyncIterator[Bridge]:
    """One bridge that serves the gated agent."""
    async with replica(emulator, "memory://") as bridge:
        yield bridge


@asynccontextmanager
async def blocking_send(
    bridge: Bridge, gate: Gate, text: str
) -> AsyncIterator[tuple[Client, str, list[Task]]]:
    """A blocking send running in the background: the client, the task's id once its
    turn runs upstream, and (after the block) the task the send answered with."""
    answered: list[Task] = []
    async with (
        a2a_client(bridge.agent_url("gated"), streaming=False) as client,
        anyio.create_task_group() as group,
    ):

        async def send() -> None:
            async for response in client.send_message(user_message(text)):
                answered.append(response.task)

        group.start_soon(send)
        with anyio.fail_after(10):
            await gate.started.wait()
        listed = (await client.list_tasks(ListTasksRequest())).tasks
        [task] = [task for task in listed if task.history[0].parts[0].text == text]
        yield client, task.id, answered


def text_of(event: StreamResponse) -> str:
    if event.HasField("task"):
        return answer_of(event.task)
    return "".join(part.text for part in event.artifact_update.artifact.parts)


async def test_a_blocking_sends_task_is_listed_read_and_followed_to_its_end_while_it_runs(
    served: Bridge, gate: Gate
) -> None:
    async with (
        blocking_send(served, gate, "wait for it") as (_, task_id, answered),
        a2a_client(served.agent_url("gated")) as follower,
    ):
        assert served.adapter.server is not None
        handlers = served.adapter.server.handlers.values()
        assert any(task_id in handler.direct for handler in handlers)  # the direct way
        events: list[StreamResponse] = []
        with anyio.fail_after(15):
            async for event in follower.subscribe(SubscribeToTaskRequest(id=task_id)):
                events.append(event)
                if "half" in text_of(event) and not gate.release.is_set():
                    meanwhile = await follower.get_task(GetTaskRequest(id=task_id))
                    gate.release.set()
    assert events[0].task.id == task_id
    assert events[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED
    assert meanwhile.status.state == TaskState.TASK_STATE_WORKING
    assert answer_of(meanwhile) == "half "
    [task] = answered
    assert task.id == task_id
    assert task.status.state == TaskState.TASK_STATE_COMPLETED
    assert answer_of(task) == "half done"


async def test_cancelling_a_blocking_sends_task_stops_the_upstream_task(
    served: Bridge, emulator: Emulator, gate: Gate
) -> None:
    async with blocking_send(served, gate, "never mind") as (client, task_id, answered):
        cancelled = await client.cancel_task(CancelTaskRequest(id=task_id))
        [upstream] = list(emulator.tasks)
        with anyio.fail_after(10):
            await emulator.wait_for_status(upstream, "stopped")
    assert cancelled.status.state == TaskState.TASK_STATE_CANCELED
    assert [task.status.state for task in answered] == [TaskState.TASK_STATE_CANCELED]


async def test_a_blocking_sends_task_is_followed_and_cancelled_from_another_replica(
    emulator: Emulator, gate: Gate, tmp_path: Path
) -> None:
    store, quick = sqlite_url(tmp_path), {"event_poll_interval": 0.05}
    async with (
        replica(emulator, store, **quick) as first,
        replica(emulator, store, **quick) as second,
    ):
        async with (
            blocking_send(first, gate, "seen from afar") as (_, task_id, answered),
            a2a_client(second.agent_url("gated")) as other,
        ):
            followed = await subscribe_until_released(other, task_id, gate)
        assert followed[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED
        assert answer_of(answered[0]) == "half done"

        gate.started, gate.release = anyio.Event(), anyio.Event()
        async with (
            blocking_send(first, gate, "stop it") as (_, task_id, answered),
            a2a_client(second.agent_url("gated")) as other,
        ):
            cancelled = await other.cancel_task(CancelTaskRequest(id=task_id))
            upstream = next(i for i, t in emulator.tasks.items() if t.status != "completed")
            with anyio.fail_after(10):
                await emulator.wait_for_status(upstream, "stopped")
    assert cancelled.status.state == TaskState.TASK_STATE_CANCELED
    assert [task.status.state for task in answered] == [TaskState.TASK_STATE_CANCELED]


async def subscribe_until_released(
    client: Client, task_id: str, gate: Gate
) -> list[StreamResponse]:
    """Subscribe, and let the agent finish once the subscription has its first event."""
    events: list[StreamResponse] = []
    with anyio.fail_after(15):
        async for event in client.subscribe(SubscribeToTaskRequest(id=task_id)):
            events.append(event)
            gate.release.set()
    return events


async def test_a_blocking_sends_task_whose_replica_died_is_finished_by_another(
    emulator: Emulator, gate: Gate, tmp_path: Path
) -> None:
    store = sqlite_url(tmp_path)
    async with replica(emulator, store) as survivor, anyio.create_task_group() as group:
        async with replica(emulator, store) as doomed:
            sent = anyio.Event()

            async def send() -> None:
                # Whatever the dying replica answers (the task as it was, or a dropped
                # connection), the task is finished elsewhere.
                with contextlib.suppress(A2AClientError):
                    async with a2a_client(doomed.agent_url("gated"), streaming=False) as client:
                        sent.set()
                        await final_task(client, user_message("outlive me"))

            group.start_soon(send)
            with anyio.fail_after(10):
                await sent.wait()
                await gate.started.wait()
        # `doomed` is gone mid-turn, without stopping the upstream task.
        gate.release.set()
        [upstream] = list(emulator.tasks)
        async with a2a_client(survivor.agent_url("gated")) as client:
            [task] = (await client.list_tasks(ListTasksRequest())).tasks
            with anyio.fail_after(20), contextlib.suppress(UnsupportedOperationError):
                async for _ in client.subscribe(SubscribeToTaskRequest(id=task.id)):
                    pass  # until the end, unless already over when the subscription came
            done = await client.get_task(GetTaskRequest(id=task.id))
    assert emulator.tasks[upstream].status == "completed"
    assert done.status.state == TaskState.TASK_STATE_COMPLETED
    assert answer_of(done) == "half done"
    assert [r for r in emulator.requests if r.path.endswith("/stop")] == []


async def test_a_push_config_made_while_a_blocking_send_runs_is_told_its_end(
    served: Bridge,
    gate: Gate,
    webhook: Webhook,  # noqa: F811 (the fixture imported above)
) -> None:
    async with blocking_send(served, gate, "tell me later") as (client, task_id, _):
        config = push_config(webhook.url)
        config.task_id = task_id
        await client.create_task_push_notification_config(config)
        gate.release.set()
    with anyio.fail_after(10):
        while "TASK_STATE_COMPLETED" not in webhook.states():
            await webhook.changed.wait()
    headers, body = webhook.received[-1]
    assert headers["x-a2a-notification-token"] == "per-task-token"
    assert headers["authorization"] == f"Bearer {HOOK_SECRET}"
    assert body["task"]["id"] == task_id
