"""Streaming, cancel, get/list, both bindings, and turns on one context, over real HTTP."""

from __future__ import annotations

import anyio
import httpx
import pytest
from a2a.client import Client
from a2a.types.a2a_pb2 import (
    CancelTaskRequest,
    GetTaskRequest,
    ListTasksRequest,
    StreamResponse,
    SubscribeToTaskRequest,
    TaskState,
)

from bridge.emulator import AgentSpec, Emulator, TurnContext
from tests.a2a.conftest import (
    TOKEN,
    TOKENS,
    Bridge,
    a2a_client,
    answer_of,
    final_task,
    serving,
    user_message,
)

pytestmark = pytest.mark.anyio


async def _collect(client: Client, text: str) -> list[StreamResponse]:
    return [response async for response in client.send_message(user_message(text))]


async def test_streaming_send_shows_steps_then_appended_text_then_completion(
    bridge: Bridge,
) -> None:
    async with a2a_client(bridge.agent_url("researcher")) as client:
        responses = await _collect(client, "what is new?")
    kinds = [response.WhichOneof("payload") for response in responses]
    assert kinds[0] == "task"
    steps = [
        r.status_update.status.message.parts[0].text
        for r in responses
        if r.HasField("status_update") and r.status_update.status.message.parts
    ]
    assert any(step.startswith("Using ") for step in steps)
    chunks = [r.artifact_update for r in responses if r.HasField("artifact_update")]
    assert len(chunks) >= 2
    assert chunks[0].append is False
    assert all(chunk.append for chunk in chunks[1:])
    assert {chunk.artifact.artifact_id for chunk in chunks} == {chunks[0].artifact.artifact_id}
    streamed = "".join(chunk.artifact.parts[0].text for chunk in chunks)
    assert responses[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED
    async with a2a_client(bridge.agent_url("researcher")) as client:
        task = await client.get_task(GetTaskRequest(id=responses[0].task.id))
    assert answer_of(task) == streamed


async def test_http_json_binding_sends_and_streams_like_json_rpc(bridge: Bridge) -> None:
    async with a2a_client(bridge.agent_url("echo"), bindings=("HTTP+JSON",)) as client:
        streamed = await final_task(client, user_message("over rest"))
    async with a2a_client(
        bridge.agent_url("echo"), bindings=("HTTP+JSON",), streaming=False
    ) as client:
        blocking = await final_task(client, user_message("over rest, blocking"))
    assert streamed.status.state == TaskState.TASK_STATE_COMPLETED
    assert blocking.status.state == TaskState.TASK_STATE_COMPLETED
    assert answer_of(blocking) == "over rest, blocking"


async def test_get_and_list_return_the_callers_tasks(bridge: Bridge) -> None:
    async with a2a_client(bridge.agent_url("echo"), streaming=False) as client:
        first = await final_task(client, user_message("one"))
        second = await final_task(client, user_message("two"))
        got = await client.get_task(GetTaskRequest(id=first.id))
        listed = await client.list_tasks(ListTasksRequest(include_artifacts=True))
    assert answer_of(got) == "one"
    assert {task.id for task in listed.tasks} >= {first.id, second.id}


async def test_non_blocking_send_returns_at_once_and_subscribe_follows_it_to_the_end(
    bridge: Bridge,
) -> None:
    async with a2a_client(bridge.agent_url("slow"), streaming=False) as client:
        request = user_message("no hurry")
        request.configuration.return_immediately = True
        task = await final_task(client, request)
    assert task.status.state in (TaskState.TASK_STATE_SUBMITTED, TaskState.TASK_STATE_WORKING)
    async with a2a_client(bridge.agent_url("slow")) as client:
        with anyio.fail_after(15):
            events = [e async for e in client.subscribe(SubscribeToTaskRequest(id=task.id))]
        done = await client.get_task(GetTaskRequest(id=task.id))
    assert events[0].task.id == task.id
    assert events[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED
    assert answer_of(done) == "Sorry for the wait. Done: no hurry"


async def test_cancel_stops_the_upstream_task(bridge: Bridge, emulator: Emulator) -> None:
    async with a2a_client(bridge.agent_url("slow")) as client:
        task_id = ""
        async with anyio.create_task_group() as group:
            seen = anyio.Event()

            async def follow() -> None:
                nonlocal task_id
                async for response in client.send_message(user_message("never mind")):
                    if response.HasField("task"):
                        task_id = response.task.id
                    update = response.status_update
                    if any("slow_tool" in part.text for part in update.status.message.parts):
                        seen.set()

            group.start_soon(follow)
            with anyio.fail_after(10):
                await seen.wait()
            cancelled = await client.cancel_task(CancelTaskRequest(id=task_id))
            group.cancel_scope.cancel()
        assert cancelled.status.state == TaskState.TASK_STATE_CANCELED
        [upstream] = list(emulator.tasks)
        with anyio.fail_after(10):
            await emulator.wait_for_status(upstream, "stopped")
        after = await client.get_task(GetTaskRequest(id=task_id))
    assert after.status.state == TaskState.TASK_STATE_CANCELED


async def test_messages_on_one_context_continue_one_upstream_thread(
    bridge: Bridge, emulator: Emulator
) -> None:
    async with a2a_client(bridge.agent_url("echo"), streaming=False) as client:
        first = await final_task(client, user_message("first"))
        second = await final_task(client, user_message("second", context_id=first.context_id))
        other = await final_task(client, user_message("elsewhere"))
    assert second.context_id == first.context_id
    assert second.id != first.id
    assert other.context_id != first.context_id
    invokes = emulator.invokes(agent="echo")
    assert len(invokes) == 3
    [thread] = {request.thread_id for request in invokes[1:2]}
    assert thread is not None and thread in emulator.tasks
    # The first turn chose the thread id the second continues; the other context has its own.
    assert invokes[0].thread_id == thread and invokes[2].thread_id not in (None, thread)
    assert answer_of(second) == "second"


async def test_calls_without_a_valid_token_are_refused_but_cards_are_public(
    bridge: Bridge,
) -> None:
    async with httpx.AsyncClient() as http:
        card = await http.get(f"{bridge.agent_url('echo')}.well-known/agent-card.json")
        bare = await http.post(bridge.agent_url("echo"), json={"jsonrpc": "2.0", "id": 1})
        forged = await http.post(
            f"{bridge.agent_url('echo')}rest/message:send",
            json={},
            headers={"Authorization": "Bearer not-a-token"},
        )
    assert card.status_code == 200
    assert bare.status_code == 401
    assert forged.status_code == 401
    assert bare.headers["www-authenticate"].startswith("Bearer")


async def test_a_protocol_0_3_json_rpc_client_is_understood(bridge: Bridge) -> None:
    body = {
        "jsonrpc": "2.0",
        "id": "1",
        "method": "message/send",
        "params": {
            "message": {
                "kind": "message",
                "messageId": "m-1",
                "role": "user",
                "parts": [{"kind": "text", "text": "from an older client"}],
            }
        },
    }
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await http.post(
            bridge.agent_url("echo"), json=body, headers={"Authorization": f"Bearer {TOKEN}"}
        )
    result = answer.json()["result"]
    assert result["status"]["state"] == "completed"
    parts = result["artifacts"][0]["parts"]
    assert "".join(part["text"] for part in parts) == "from an older client"


async def test_a_final_answer_unlike_the_stream_replaces_the_streamed_artifact(
    emulator: Emulator,
) -> None:
    async def edits(ctx: TurnContext) -> None:
        ctx.chunk("first draft")
        ctx.result = "the final answer"

    emulator.add_agent(AgentSpec("editor", "Streams a draft, answers something else.", edits))
    async with (
        serving(emulator, tokens=TOKENS) as bridge,
        a2a_client(bridge.agent_url("editor")) as client,
    ):
        responses = await _collect(client, "write")
        task = await client.get_task(GetTaskRequest(id=responses[0].task.id))
    chunks = [r.artifact_update for r in responses if r.HasField("artifact_update")]
    assert [c.artifact.parts[0].text for c in chunks] == ["first draft", "the final answer"]
    assert chunks[-1].append is False and chunks[-1].last_chunk is True
    assert answer_of(task) == "the final answer"
