"""Turns an adapter cannot deliver after a crash: no in-flight record (`recorded=False`), and
one-shot turns on a key of their own that store nothing at all (`one_shot=True`)."""

from __future__ import annotations

from typing import Any

import anyio

from bridge.client import AgentClient
from bridge.conversations import ConversationKey, Conversations, Message
from bridge.events import Event, TaskCreated, TaskFinished
from bridge.stores import InFlightTurn, SessionStore

KEY = ConversationKey("mcp", "session-1", "agent")


class _Seen:
    """What the store held while the turn ran (read at its `task_created`)."""

    records: list[InFlightTurn]
    lock_owner: str | None


async def _turn(
    conversations: Conversations, key: ConversationKey, text: str, **kwargs: Any
) -> tuple[list[Event], _Seen]:
    echo = (await conversations.client.find_agent("echo")).id
    store, seen, events = conversations.store, _Seen(), []
    with anyio.fail_after(10):
        async with conversations.turn(
            key, Message(text=text, principal="dev"), agent_id=echo, source="mcp", **kwargs
        ) as turn:
            async for event in turn:
                events.append(event)
                if isinstance(event, TaskCreated):
                    seen.records = await store.list_turns()
                    seen.lock_owner = await store.lock_owner(f"turn:{key}")
    return events, seen


async def test_a_recorded_turn_is_in_the_ledger_while_it_runs(
    conversations: Conversations,
) -> None:
    _, seen = await _turn(conversations, KEY, "one")
    assert [record.key for record in seen.records] == [str(KEY)]


async def test_an_unrecorded_turn_has_no_ledger_record_but_holds_its_lock_and_thread(
    conversations: Conversations, client: AgentClient, store: SessionStore
) -> None:
    events, seen = await _turn(conversations, KEY, "one", recorded=False)
    assert seen.records == [] and seen.lock_owner == "replica-a"
    ref = await conversations.thread_for(KEY)
    assert ref is not None and ref.task_id == events[0].task_id
    events, _ = await _turn(conversations, KEY, "two", recorded=False)
    assert isinstance(events[-1], TaskFinished) and events[-1].task_id == ref.task_id
    assert len(await client.get_thread(ref.task_id)) == 4
    assert await store.list_turns() == []


async def test_a_one_shot_turn_stores_nothing_and_starts_one_new_thread(
    conversations: Conversations, emulator: Any, store: SessionStore
) -> None:
    key = ConversationKey("mcp", "call-1", "agent")
    events, seen = await _turn(conversations, key, "ping", one_shot=True)
    assert seen.records == [] and seen.lock_owner is None
    assert isinstance(events[-1], TaskFinished) and events[-1].task.result == "ping"
    assert await store.get_thread(str(key)) is None and await store.list_turns() == []
    (invoke,) = emulator.invokes()
    assert invoke.body is not None and invoke.body.get("id") == events[0].task_id
