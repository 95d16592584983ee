"""Platform message ids have a typed home: the messages an answer is drawn in are recorded
with the turn (recovery finishes them in place), and a posted answer links back to its
conversation, so a reply to it continues that conversation."""

from __future__ import annotations

import anyio

from bridge.client import AgentClient
from bridge.conversations import ConversationKey, Conversations, Message
from bridge.errors import UpstreamError
from bridge.models import Task
from bridge.stores import InFlightTurn, PlatformMessage

KEY = ConversationKey("line", "room-1", "root-7")
ANSWER = PlatformMessage(adapter="line", space="room-1", id="42")


async def test_a_posted_answer_links_back_to_its_conversation(
    conversations: Conversations,
) -> None:
    assert await conversations.conversation_of(ANSWER) is None
    await conversations.link_message(ANSWER, KEY)
    assert await conversations.conversation_of(ANSWER) == KEY
    other_space = ANSWER.model_copy(update={"space": "room-2"})
    assert await conversations.conversation_of(other_space) is None


async def test_the_answers_messages_are_kept_with_the_turn_and_reach_recovery(
    conversations: Conversations, client: AgentClient
) -> None:
    writer = (await client.find_agent("writer")).id
    recorded: list[InFlightTurn | None] = []
    with anyio.fail_after(10):
        async with conversations.turn(
            KEY, Message(text="chunks=3 seconds=0.1 chars=60"), agent_id=writer, source="api"
        ) as turn:
            await turn.add_message(ANSWER)
            await turn.add_message(ANSWER)  # recorded once
            recorded.append(await conversations.store.get_turn(turn.record.turn_id))
            finished = [event async for event in turn]
    [record] = recorded
    assert finished and record is not None and record.messages == (ANSWER,)
    assert str(ANSWER) == "line|room-1|42"
    # The same record left behind by a replica that died: recovery hands over its messages.
    orphan = record.model_copy(update={"turn_id": "orphan-1", "holder": "dead-replica"})
    await conversations.store.record_turn(orphan)
    delivered: list[tuple[tuple[PlatformMessage, ...], str | None]] = []

    async def deliver(record: InFlightTurn, task: Task | None, error: UpstreamError | None) -> None:
        delivered.append((record.messages, task.status if task else None))

    with anyio.fail_after(10):
        assert await conversations.recover("line", deliver) == 1
    assert delivered == [((ANSWER,), "completed")]
