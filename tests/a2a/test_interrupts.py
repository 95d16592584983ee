"""Turns that need the user: approval → input-required, sign-in → auth-required, and the
message that resumes them (by taskId), over real HTTP with the official client."""

from __future__ import annotations

import anyio
import pytest
from a2a.types.a2a_pb2 import GetTaskRequest, TaskState

from bridge.emulator import Emulator
from tests.a2a.conftest import Bridge, a2a_client, answer_of, final_task, user_message

pytestmark = pytest.mark.anyio


async def test_an_approval_pause_is_input_required_and_a_message_with_the_task_id_resumes_it(
    bridge: Bridge, emulator: Emulator
) -> None:
    async with a2a_client(bridge.agent_url("approver"), streaming=False) as client:
        paused = await final_task(client, user_message("delete the old branch"))
        assert paused.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
        prompt = paused.status.message.parts[0].text
        assert prompt == "Approval required\nThe agent wants to act on: delete the old branch"
        [upstream] = list(emulator.tasks)
        emulator.resume(upstream, approved=True)
        with anyio.fail_after(10):
            await emulator.wait_for_status(upstream, "completed")
        resumed = await final_task(
            client, user_message("approved", task_id=paused.id, context_id=paused.context_id)
        )
        again = await client.get_task(GetTaskRequest(id=paused.id))
    assert resumed.id == paused.id
    assert resumed.status.state == TaskState.TASK_STATE_COMPLETED
    assert answer_of(resumed) == "Approved. Done: delete the old branch"
    assert again.status.state == TaskState.TASK_STATE_COMPLETED
    assert len(emulator.invokes(agent="approver")) == 1


async def test_a_streaming_resume_follows_the_turn_from_the_pause_to_its_end(
    bridge: Bridge, emulator: Emulator
) -> None:
    async with a2a_client(bridge.agent_url("approver")) as client:
        first = [r async for r in client.send_message(user_message("ship it"))]
        assert first[-1].status_update.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
        task_id = first[0].task.id
        [upstream] = list(emulator.tasks)
        async with anyio.create_task_group() as group:
            states: list[int] = []

            async def follow() -> None:
                async for response in client.send_message(user_message("go", task_id=task_id)):
                    if response.HasField("status_update"):
                        states.append(response.status_update.status.state)

            group.start_soon(follow)
            emulator.resume(upstream, approved=True)
        done = await client.get_task(GetTaskRequest(id=task_id))
    assert states[-1] == TaskState.TASK_STATE_COMPLETED
    assert TaskState.TASK_STATE_WORKING in states
    assert answer_of(done) == "Approved. Done: ship it"


async def test_a_sign_in_is_auth_required_with_the_link_and_resumes_once_signed_in(
    bridge: Bridge, emulator: Emulator
) -> None:
    async with a2a_client(bridge.agent_url("signin"), streaming=False) as client:
        waiting = await final_task(client, user_message("read my mail"))
        assert waiting.status.state == TaskState.TASK_STATE_AUTH_REQUIRED
        parts = waiting.status.message.parts
        [upstream] = list(emulator.tasks)
        assert parts[1].url == f"{emulator.base_url}/_emulator/login/{upstream}"
        assert "Example MCP" in parts[0].text
        emulator.complete_login(upstream)
        resumed = await final_task(client, user_message("signed in", task_id=waiting.id))
    assert resumed.status.state == TaskState.TASK_STATE_COMPLETED
    assert answer_of(resumed) == "Signed in to Example MCP. Done: read my mail"
