"""Invokes that fail without saying whether the turn started: the client asks the platform,
then follows the turn that exists or sends the invoke again, never starting two turns."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from bridge import errors
from bridge.client import AgentClient
from bridge.emulator import Emulator, Fault
from bridge.events import Event, ResumedByPolling, TaskCreated, TaskFinished
from bridge.testing import open_emulator
from tests.client.conftest import fast_config

#: Each way an invoke can fail after the platform created its turn.
AFTER_CREATE = {
    "500 after create": Fault("status", status=500, create=True, path="/invoke"),
    "cut before task_created": Fault("drop", after=0),
    "reset after create": Fault("reset", create=True, path="/invoke"),
}
#: Each way an invoke can fail with nothing created.
NOT_CREATED = {
    "500": Fault("status", status=500, path="/invoke"),
    "502": Fault("status", status=502, path="/invoke"),
    "reset": Fault("reset", path="/invoke"),
}


@pytest.fixture
async def trusting(emulator: Emulator) -> AsyncIterator[AgentClient]:
    """A client that trusts chosen thread ids from the start (`new_thread_ids = "on"`)."""
    config = fast_config(new_thread_ids="on")
    async with AgentClient(config, base_url=emulator.base_url, api_key="test-key") as client:
        yield client


def turns_with(emulator: Emulator, text: str) -> int:
    """Upstream turns started with this text, over every thread."""
    return sum(turn.text == text for record in emulator.tasks.values() for turn in record.turns)


async def run_turn(
    client: AgentClient, agent: str, text: str, thread: str | None = None
) -> tuple[list[Event], str | None]:
    agent_id = (await client.find_agent(agent)).id
    with anyio.fail_after(10):
        async with client.stream(agent_id, text, thread=thread) as run:
            events = [event async for event in run]
    return events, run.task_id


@pytest.mark.parametrize("fault", AFTER_CREATE.values(), ids=AFTER_CREATE.keys())
async def test_a_new_thread_whose_invoke_failed_after_the_turn_started_is_followed(
    emulator: Emulator, trusting: AgentClient, fault: Fault
) -> None:
    emulator.inject(fault)
    events, task_id = await run_turn(trusting, "echo", "already started")
    assert isinstance(events[-1], TaskFinished)
    assert events[-1].task.result == "already started"
    assert any(isinstance(event, TaskCreated) for event in events)
    assert any(isinstance(event, ResumedByPolling) for event in events)
    assert len(emulator.invokes(agent="echo")) == 1
    assert turns_with(emulator, "already started") == 1
    # The thread's id is the one the client chose and sent.
    [invoke] = emulator.invokes(agent="echo")
    assert invoke.json["id"] == task_id


@pytest.mark.parametrize("fault", NOT_CREATED.values(), ids=NOT_CREATED.keys())
async def test_a_new_thread_whose_invoke_started_nothing_is_sent_again_under_the_same_id(
    emulator: Emulator, trusting: AgentClient, fault: Fault
) -> None:
    emulator.inject(fault)
    events, task_id = await run_turn(trusting, "echo", "try again")
    assert isinstance(events[-1], TaskFinished)
    assert events[-1].task.result == "try again"
    invokes = emulator.invokes(agent="echo")
    assert [invoke.json["id"] for invoke in invokes] == [task_id, task_id]
    assert turns_with(emulator, "try again") == 1
    checks = [
        r for r in emulator.requests if r.method == "GET" and r.path == f"/v1/tasks/{task_id}"
    ]
    assert checks and checks[0].time < invokes[1].time


@pytest.mark.parametrize("fault", AFTER_CREATE.values(), ids=AFTER_CREATE.keys())
async def test_a_continued_turn_whose_invoke_failed_after_it_was_appended_is_followed(
    emulator: Emulator, trusting: AgentClient, fault: Fault
) -> None:
    # The same text twice: only the message's position tells the two turns apart.
    _, thread = await run_turn(trusting, "echo", "again")
    emulator.inject(fault)
    events, task_id = await run_turn(trusting, "echo", "again", thread=thread)
    assert task_id == thread
    assert isinstance(events[-1], TaskFinished)
    assert events[-1].task.result == "again"
    assert len(emulator.invokes(thread_id=thread)) == 2
    assert len(emulator.task(thread).turns) == 2


@pytest.mark.parametrize("fault", NOT_CREATED.values(), ids=NOT_CREATED.keys())
async def test_a_continued_turn_that_was_not_appended_is_sent_again(
    emulator: Emulator, trusting: AgentClient, fault: Fault
) -> None:
    _, thread = await run_turn(trusting, "echo", "again")
    emulator.inject(fault)
    events, _ = await run_turn(trusting, "echo", "again", thread=thread)
    assert isinstance(events[-1], TaskFinished)
    assert len(emulator.invokes(thread_id=thread)) == 3
    assert [turn.text for turn in emulator.task(thread).turns] == ["again", "again"]


async def test_a_check_that_cannot_tell_ends_in_the_invoke_error_without_sending_again(
    emulator: Emulator, trusting: AgentClient
) -> None:
    emulator.inject(Fault("status", status=500, path="/invoke"))
    emulator.inject(Fault("status", status=500, path="/v1/tasks/", times=10))
    with pytest.raises(errors.ServerError) as caught:
        await run_turn(trusting, "echo", "unknowable")
    assert caught.value.status_code == 500
    assert len(emulator.invokes(agent="echo")) == 1
    assert turns_with(emulator, "unknowable") == 0


async def test_an_invoke_that_keeps_failing_is_sent_at_most_max_attempts_times(
    emulator: Emulator,
) -> None:
    config = fast_config(new_thread_ids="on", max_attempts=3)
    emulator.inject(Fault("status", status=500, path="/invoke", times=10))
    async with AgentClient(config, base_url=emulator.base_url, api_key="test-key") as client:
        with pytest.raises(errors.ServerError):
            await run_turn(client, "echo", "never")
    assert len(emulator.invokes(agent="echo")) == 3


async def test_auto_trusts_a_missing_task_only_once_the_platform_kept_a_chosen_id(
    emulator: Emulator,
) -> None:
    config = fast_config(new_thread_ids="auto", idle_timeout=0.2)
    async with AgentClient(config, base_url=emulator.base_url, api_key="test-key") as client:
        emulator.inject(Fault("status", status=500, path="/invoke"))
        with pytest.raises(errors.ServerError):
            await run_turn(client, "echo", "too early")
        assert client.caller_ids.kept is None
        await run_turn(client, "echo", "proves it")
        assert client.caller_ids.kept is True
        emulator.inject(Fault("status", status=500, path="/invoke"))
        events, _ = await run_turn(client, "echo", "now safe")
    assert isinstance(events[-1], TaskFinished)
    assert turns_with(emulator, "too early") == 0
    assert turns_with(emulator, "now safe") == 1
    assert len(emulator.invokes(agent="echo")) == 4


async def test_an_undecided_check_waits_for_another_new_thread_to_decide(
    emulator: Emulator,
) -> None:
    config = fast_config(new_thread_ids="auto", idle_timeout=10)
    async with AgentClient(config, base_url=emulator.base_url, api_key="test-key") as client:
        emulator.inject(Fault("status", status=500, path="/invoke", agent="echo"))
        result: list[Event] = []

        async def waiting_turn() -> None:
            events, _ = await run_turn(client, "echo", "waits")
            result.extend(events)

        async with anyio.create_task_group() as group:
            group.start_soon(waiting_turn)
            with anyio.fail_after(5):
                await checked(emulator)
            assert client.caller_ids.kept is None
            await run_turn(client, "researcher", "decides")
    assert isinstance(result[-1], TaskFinished)
    assert turns_with(emulator, "waits") == 1


async def checked(emulator: Emulator) -> None:
    """Return once the client asked for a task after a failed invoke. The emulator's
    request log offers no event to wait on, so it is looked at between short pauses."""
    while True:
        failed = [r.json["id"] for r in emulator.invokes() if r.status == 500]
        if any(
            r.method == "GET" and r.path == f"/v1/tasks/{i}"
            for r in emulator.requests
            for i in failed
        ):
            return
        await anyio.sleep(0.01)


@pytest.mark.parametrize("caller_ids", ["ignore", "refuse"])
async def test_a_platform_that_ignores_or_refuses_chosen_ids_gets_none_after_the_first(
    caller_ids: Any,
) -> None:
    async with (
        open_emulator(caller_ids=caller_ids) as emulator,
        AgentClient(fast_config(), base_url=emulator.base_url, api_key="test-key") as client,
    ):
        events, task_id = await run_turn(client, "echo", "first")
        assert isinstance(events[-1], TaskFinished)
        assert client.caller_ids.kept is False
        await run_turn(client, "echo", "second")
        # No chosen id can be checked now: a failed first turn is an error, never re-sent.
        emulator.inject(Fault("status", status=500, path="/invoke"))
        with pytest.raises(errors.ServerError):
            await run_turn(client, "echo", "third")
        bodies = [invoke.json for invoke in emulator.invokes(agent="echo")]
    assert "id" in bodies[0]
    assert task_id != bodies[0]["id"]
    assert all("id" not in body for body in bodies[-2:])
    assert turns_with(emulator, "first") == 1
    assert turns_with(emulator, "third") == 0


async def test_off_never_sends_a_chosen_id(emulator: Emulator) -> None:
    config = fast_config(new_thread_ids="off")
    async with AgentClient(config, base_url=emulator.base_url, api_key="test-key") as client:
        await run_turn(client, "echo", "platform's choice")
    [invoke] = emulator.invokes(agent="echo")
    assert "id" not in invoke.json


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_plain_invoke_that_failed_after_the_turn_started_returns_that_turn(
    emulator: Emulator, trusting: AgentClient, mode: str
) -> None:
    echo = (await trusting.find_agent("echo")).id
    path = "/invoke/async" if mode == "async" else "/invoke"
    emulator.inject(Fault("status", status=500, create=True, path=path))
    with anyio.fail_after(10):
        if mode == "sync":
            task = await trusting.invoke(echo, "plain")
        else:
            task = await trusting.wait_task((await trusting.invoke_async(echo, "plain")).id)
    assert task.status == "completed" and task.result == "plain"
    assert len(emulator.invokes(agent="echo")) == 1
    assert turns_with(emulator, "plain") == 1


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_plain_invoke_on_a_thread_that_started_nothing_is_sent_again(
    emulator: Emulator, trusting: AgentClient, mode: str
) -> None:
    echo = (await trusting.find_agent("echo")).id
    first = await trusting.invoke(echo, "same")
    path = "/invoke/async" if mode == "async" else "/invoke"
    emulator.inject(Fault("reset", path=path))
    with anyio.fail_after(10):
        if mode == "sync":
            task = await trusting.invoke(echo, "same", thread=first.id)
        else:
            started = await trusting.invoke_async(echo, "same", thread=first.id)
            task = await trusting.wait_task(started.id)
    assert task.id == first.id and task.result == "same"
    assert [turn.text for turn in emulator.task(first.id).turns] == ["same", "same"]
    assert len(emulator.invokes(thread_id=first.id)) == 3
