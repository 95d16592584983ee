"""Recovery delivers the interrupted turn's own answer, not the thread's latest one."""

from __future__ import annotations

from typing import Any

from bridge.client import AgentClient
from bridge.conversations import Conversations
from bridge.errors import UpstreamError
from bridge.models import Task
from bridge.stores import InFlightTurn, SessionStore


async def test_recovery_delivers_its_own_turns_answer_after_a_later_turn_on_the_thread(
    emulator: Any, client: AgentClient, store: SessionStore, conversations: Conversations
) -> None:
    echo = emulator.agent("echo").id
    async with client.stream(echo, "the first question", source="telegram") as run:
        first = await run.result()
    # After the crash another message of the same chat ran to completion on the thread.
    async with client.stream(echo, "a later question", thread=first.id, source="telegram") as run:
        assert (await run.result()).result == "a later question"
    await store.record_turn(
        InFlightTurn(
            turn_id="interrupted",
            key="telegram|1|chat",
            adapter="telegram",
            agent_id=echo,
            text="the first question",
            source="telegram",
            task_id=first.id,
            new_thread_id=first.id,
            holder="a-replica-that-died",
        )
    )
    delivered: list[str | None] = []

    async def deliver(record: InFlightTurn, task: Task | None, error: UpstreamError | None) -> None:
        delivered.append(task.result if task else None)

    assert await conversations.recover("telegram", deliver) == 1
    assert delivered == ["the first question"]
