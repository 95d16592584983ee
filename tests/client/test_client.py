"""AgentClient against the emulator over a real socket."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from bridge import errors
from bridge.client import AgentClient
from bridge.emulator import Fault
from bridge.events import (
    AnalysisRecorded,
    AuthEventReceived,
    Event,
    ResumedByPolling,
    TaskCreated,
    TaskFinished,
    TaskUpdated,
    TextDelta,
    ThoughtRecorded,
    ToolCallFinished,
    ToolCallRequested,
    UnknownEvent,
)
from bridge.models import InvokeOptions, User
from tests.client.conftest import fast_config


async def agent_id(client: AgentClient, name: str) -> str:
    return (await client.find_agent(name)).id


async def collect(client: AgentClient, agent: str, text: str, **kwargs: Any) -> list[Event]:
    with anyio.fail_after(10):
        async with client.stream(await agent_id(client, agent), text, **kwargs) as run:
            return [event async for event in run]


async def test_list_agents_reads_every_page(emulator: Any, client: AgentClient) -> None:
    for index in range(60):
        emulator.add_agent(f"extra-{index:02d}")
    agents = await client.list_agents()
    names = {agent.name for agent in agents}
    assert {"echo", "writer", "researcher"} <= names
    assert len([name for name in names if name.startswith("extra-")]) == 60


async def test_echo_streams_text_deltas_then_the_completed_task(client: AgentClient) -> None:
    events = await collect(client, "echo", "hello there")
    assert isinstance(events[0], TaskCreated)
    assert isinstance(events[-1], TaskFinished)
    assert events[-1].task.result == "hello there"
    text = "".join(event.text for event in events if isinstance(event, TextDelta))
    assert text == "hello there"


async def test_researcher_yields_every_step_type(client: AgentClient) -> None:
    events = await collect(client, "researcher", "weather in Paris?")
    kinds = [type(event) for event in events]
    for kind in (
        TaskCreated,
        TaskUpdated,
        ThoughtRecorded,
        ToolCallRequested,
        ToolCallFinished,
        AnalysisRecorded,
        TextDelta,
        TaskFinished,
    ):
        assert kind in kinds
    call = next(event for event in events if isinstance(event, ToolCallRequested))
    assert call.name
    assert not any(isinstance(event, UnknownEvent) for event in events)


async def test_invoke_carries_source_user_and_options(emulator: Any, client: AgentClient) -> None:
    user = User(id="u-42", email="ann@example.com", first_name="Ann")
    options = InvokeOptions(
        output_format="markdown",
        think_mode="harder",
        instructions_override="be brief",
        llm_reasoning_effort="high",
        version="draft",
    )
    await collect(client, "echo", "hi", user=user, source="slack", options=options)
    request = emulator.invokes()[-1]
    assert request.body["source"] == "slack"
    assert request.body["input"]["user"] == {
        "id": "u-42",
        "email": "ann@example.com",
        "first_name": "Ann",
    }
    assert request.body["output_format"] == "markdown"
    assert request.body["think_mode"] == "harder"
    assert request.body["llm_reasoning_effort"] == "high"
    assert request.body["events_streaming"] is True
    assert request.query.get("version") == "draft"
    assert request.headers["user-agent"].startswith("agent-bridge/")


async def test_a_second_turn_continues_the_same_thread(emulator: Any, client: AgentClient) -> None:
    first = await collect(client, "echo", "one")
    thread = first[0].task_id
    second = await collect(client, "echo", "two", thread=thread)
    assert second[-1].task.id == thread
    messages = await client.get_thread(thread)
    assert [m.role for m in messages] == ["user", "assistant", "user", "assistant"]
    assert await client.thread_length(thread) == 4
    full = await client.get_full_thread(thread)
    assert "root" in full


async def test_failed_turn_raises_run_failed_with_the_task(client: AgentClient) -> None:
    with pytest.raises(errors.RunFailedError) as caught:
        await collect(client, "failing", "please fail")
    assert caught.value.status == "failed"
    assert caught.value.task_id
    with pytest.raises(errors.RunFailedError) as caught:
        await collect(client, "failing", "an error please")
    assert caught.value.status == "error"


async def test_signin_agent_emits_a_login_url(emulator: Any, client: AgentClient) -> None:
    seen: list[AuthEventReceived] = []
    with anyio.fail_after(10):
        async with client.stream(await agent_id(client, "signin"), "connect") as run:
            async for event in run:
                if isinstance(event, AuthEventReceived) and event.is_login_required:
                    seen.append(event)
                    emulator.complete_login(run.task_id)
    assert seen and seen[0].url


async def test_paused_task_is_visible_and_resumes(emulator: Any, client: AgentClient) -> None:
    paused = False
    with anyio.fail_after(10):
        async with client.stream(await agent_id(client, "approver"), "deploy") as run:
            async for event in run:
                if isinstance(event, TaskUpdated) and event.task.is_paused:
                    paused = True
                    assert event.task.hitl_request
                    emulator.resume(run.task_id)
    assert paused and run.task is not None and run.task.status == "completed"


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, errors.AuthenticationError),
        (403, errors.PermissionDeniedError),
        (404, errors.NotFoundError),
        (500, errors.ServerError),
    ],
)
async def test_error_statuses_map_to_typed_errors(
    emulator: Any, client: AgentClient, status: int, error: type[errors.UpstreamStatusError]
) -> None:
    emulator.inject(Fault(kind="status", status=status, path="/v1/tasks/", times=4))
    with pytest.raises(error) as caught:
        await client.get_task("anything")
    assert caught.value.status_code == status


async def test_wrong_key_is_an_authentication_error(emulator: Any) -> None:
    async with AgentClient(fast_config(), base_url=emulator.base_url, api_key="wrong") as bad:
        with pytest.raises(errors.AuthenticationError) as caught:
            await bad.list_agents()
    assert caught.value.status_code == 401


async def test_unknown_agent_is_not_found(client: AgentClient) -> None:
    with pytest.raises(errors.NotFoundError):
        await client.get_agent("no-such-agent")


async def test_validation_error_carries_the_detail_list(emulator: Any, client: AgentClient) -> None:
    with pytest.raises(errors.ValidationError) as caught:
        await client._json("POST", f"/v1/agents/{await agent_id(client, 'echo')}/invoke", json={})
    assert caught.value.status_code == 422
    assert caught.value.errors and "loc" in caught.value.errors[0]


async def test_429_and_503_refusals_are_retried_honouring_retry_after(
    emulator: Any, client: AgentClient
) -> None:
    echo = await agent_id(client, "echo")
    emulator.inject(Fault(kind="status", status=429, retry_after=0.05, path="/invoke/stream"))
    emulator.inject(Fault(kind="status", status=503, retry_after=0.05, path="/invoke/stream"))
    async with client.stream(echo, "persist") as run:
        task = await run.result()
    assert task.result == "persist"
    assert len(emulator.invokes(agent=echo)) == 3
    assert len(emulator.tasks) == 1


async def test_refusals_stop_after_max_attempts(emulator: Any) -> None:
    emulator.inject(Fault(kind="status", status=503, retry_after=0.01, path="/v1/agents", times=10))
    async with AgentClient(
        fast_config(max_attempts=2), base_url=emulator.base_url, api_key="test-key"
    ) as c:
        with pytest.raises(errors.ServerError) as caught:
            await c.list_agents()
    assert caught.value.retry_after == pytest.approx(0.01)


async def test_connect_failure_is_retried_then_raised() -> None:
    async with AgentClient(
        fast_config(max_attempts=2), base_url="http://127.0.0.1:9", api_key="k"
    ) as c:
        with pytest.raises(errors.UpstreamConnectError):
            await c.list_agents()


@pytest.mark.parametrize("after", [1, 2, 3, 5])
async def test_a_cut_stream_resumes_by_polling_without_resending(
    emulator: Any, client: AgentClient, after: int
) -> None:
    writer = await agent_id(client, "writer")
    emulator.inject(Fault(kind="drop", after=after))
    async with client.stream(writer, "chars=800 chunks=8") as run:
        events = [event async for event in run]
    assert any(isinstance(event, ResumedByPolling) for event in events)
    assert isinstance(events[-1], TaskFinished)
    assert events[-1].task.status == "completed"
    assert len(events[-1].task.result or "") >= 700
    assert len(emulator.invokes(agent=writer)) == 1


async def test_a_stalled_stream_resumes_by_polling_after_the_idle_timeout(emulator: Any) -> None:
    async with AgentClient(
        fast_config(idle_timeout=0.3), base_url=emulator.base_url, api_key="test-key"
    ) as c:
        echo = await agent_id(c, "echo")
        emulator.inject(Fault(kind="stall", after=2, seconds=None))
        with anyio.fail_after(10):
            async with c.stream(echo, "still here") as run:
                events = [event async for event in run]
    assert any(isinstance(event, ResumedByPolling) for event in events)
    assert run.task is not None and run.task.result == "still here"
    assert len(emulator.invokes(agent=echo)) == 1


async def test_malformed_event_is_reported_and_the_turn_completes(
    emulator: Any, client: AgentClient
) -> None:
    emulator.inject(Fault(kind="garbage", after=1))
    events = await collect(client, "echo", "robust")
    assert any(isinstance(event, UnknownEvent) and event.type == "invalid_json" for event in events)
    assert isinstance(events[-1], TaskFinished) and events[-1].task.result == "robust"


async def test_oversize_event_is_a_clear_stream_error_then_polling(emulator: Any) -> None:
    config = fast_config(max_event_bytes=2048)
    async with AgentClient(config, base_url=emulator.base_url, api_key="test-key") as c:
        writer = await agent_id(c, "writer")
        async with c.stream(writer, "chars=6000 chunks=2") as run:
            events = [event async for event in run]
    resumed = [event for event in events if isinstance(event, ResumedByPolling)]
    assert resumed and "larger than 2048" in resumed[0].reason
    assert run.task is not None and len(run.task.result or "") >= 6000


async def test_keepalives_on_a_slow_agent_keep_the_stream_alive(
    emulator: Any, client: AgentClient
) -> None:
    events = await collect(client, "slow", "take your time")
    assert not any(isinstance(event, ResumedByPolling) for event in events)
    assert isinstance(events[-1], TaskFinished)


async def test_overlapping_turns_on_one_thread_get_409(emulator: Any, client: AgentClient) -> None:
    slow = await agent_id(client, "slow")
    with anyio.fail_after(10):
        async with client.stream(slow, "first") as run:
            async for event in run:
                if isinstance(event, TaskCreated):
                    with pytest.raises(errors.TurnConflictError) as caught:
                        async with client.stream(slow, "second", thread=run.task_id) as other:
                            await other.result()
                    assert caught.value.status_code == 409
                    break


async def test_cancelling_the_consumer_releases_the_connection_and_stops_the_task(
    emulator: Any, client: AgentClient
) -> None:
    slow = await agent_id(client, "slow")
    task_id = None
    with anyio.fail_after(10):
        with anyio.CancelScope() as scope:
            async with client.stream(slow, "never mind", stop_on_cancel=True) as run:
                async for event in run:
                    if isinstance(event, TaskCreated):
                        task_id = run.task_id
                        scope.cancel()
        assert task_id is not None
        record = await emulator.wait_for_status(task_id, "stopped")
    assert record is not None
    stops = [r for r in emulator.requests if r.path.endswith(f"/tasks/{task_id}/stop")]
    assert len(stops) == 1
    pool = client._http._transport._pool  # type: ignore[attr-defined]
    assert all(
        not connection.is_available() or connection.is_idle() for connection in pool.connections
    )


async def test_sync_and_async_invoke_and_wait(client: AgentClient) -> None:
    echo = await agent_id(client, "echo")
    task = await client.invoke(echo, "sync")
    assert task.result == "sync"
    pending = await client.invoke_async(echo, "later")
    assert pending.status in ("pending", "executing", "completed")
    done = await client.wait_task(pending.id)
    assert done.result == "later"
    with pytest.raises(errors.RunFailedError):
        await client.invoke(await agent_id(client, "failing"), "x")


async def test_stop_is_idempotent_on_a_finished_task(client: AgentClient) -> None:
    task = await client.invoke(await agent_id(client, "echo"), "done")
    stopped = await client.stop_task(task.id)
    assert stopped.status == "completed"


async def test_a_response_over_max_response_bytes_is_refused_as_a_transport_error(
    emulator: Any,
) -> None:
    config = fast_config(max_response_bytes=1024, max_attempts=1)
    async with AgentClient(config, base_url=emulator.base_url, api_key="test-key") as c:
        with pytest.raises(errors.TransportError):
            await c.list_agents_page(per_page=50)
        assert await c.health()  # small answers still go through


async def test_a_run_given_up_while_polling_closes_without_an_error_elsewhere(
    emulator: Any, client: AgentClient
) -> None:
    """The caller is cancelled while the run is suspended at an event it polled: closing the
    run's events (which may happen from another task) raises nothing anywhere."""
    slow = await agent_id(client, "slow")
    emulator.inject(Fault(kind="drop", after=1))
    polled = anyio.Event()

    async def give_up_after_a_polled_event() -> None:
        async with client.stream(slow, "take your time") as run:
            async for event in run:
                if isinstance(event, TaskUpdated) and run.resumed_by_polling:
                    polled.set()
                    await anyio.sleep_forever()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(give_up_after_a_polled_event)
            await polled.wait()
            group.cancel_scope.cancel()
