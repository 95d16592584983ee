"""The conversations service: mapping, one turn at a time, policies, dedupe, handles, recovery."""

from __future__ import annotations

import time
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from pydantic import SecretStr

from bridge import errors
from bridge.client import AgentClient
from bridge.conversations import MAPPING_REFRESH, ConversationKey, Conversations, Message
from bridge.emulator import Fault
from bridge.events import Event, TaskCreated, TaskFinished, TextDelta
from bridge.handles import HandleSealer
from bridge.models import Task, User
from bridge.stores import InFlightTurn, SessionStore
from tests.conversations.conftest import conversations_config

KEY = ConversationKey("slack", "T1/C1", "1700000000.000100")
ANN = User(id="U1", email="ann@example.com", first_name="Ann")


async def agent(client: AgentClient, name: str) -> str:
    return (await client.find_agent(name)).id


async def say(
    conversations: Conversations, key: ConversationKey, text: str, agent_id: str, **kwargs: Any
) -> tuple[list[Event], Any]:
    with anyio.fail_after(10):
        async with conversations.turn(
            key,
            Message(text=text, user=ANN, principal="U1"),
            agent_id=agent_id,
            source="slack",
            **kwargs,
        ) as turn:
            events = [event async for event in turn]
    return events, turn


async def test_first_turn_maps_the_key_and_the_next_continues_it(
    conversations: Conversations, client: AgentClient, emulator: Any
) -> None:
    echo = await agent(client, "echo")
    events, _ = await say(conversations, KEY, "one", echo)
    ref = await conversations.thread_for(KEY)
    assert ref is not None and ref.task_id == events[0].task_id and ref.owner == "U1"
    events, _ = await say(conversations, KEY, "two", echo)
    assert events[-1].task_id == ref.task_id
    assert len(await client.get_thread(ref.task_id)) == 4
    # The first turn goes under the id the client chose for the new thread.
    assert [r.body.get("id") for r in emulator.invokes()] == [ref.task_id, ref.task_id]


async def test_invokes_carry_the_adapter_source_and_the_user(
    conversations: Conversations, client: AgentClient, emulator: Any
) -> None:
    await say(conversations, KEY, "hi", await agent(client, "echo"))
    body = emulator.invokes()[-1].body
    assert body["source"] == "slack"
    assert body["input"]["user"]["email"] == "ann@example.com"


async def test_the_ledger_is_empty_after_a_delivered_turn(
    conversations: Conversations, client: AgentClient, store: SessionStore
) -> None:
    await say(conversations, KEY, "hi", await agent(client, "echo"))
    assert await store.list_turns() == []


async def test_messages_during_a_turn_queue_in_order_without_overlap(
    conversations: Conversations, client: AgentClient, emulator: Any
) -> None:
    writer = await agent(client, "writer")
    answers: dict[str, str] = {}
    queued: list[str] = []

    async def send(text: str) -> None:
        async def note() -> None:
            queued.append(text)

        events, _ = await say(
            conversations, KEY, f"{text} chars=200 chunks=20 seconds=0.2", writer, on_queued=note
        )
        assert isinstance(events[-1], TaskFinished)
        answers[text] = events[-1].task.id

    with anyio.fail_after(20):
        async with anyio.create_task_group() as group:
            for text in ("a", "b", "c"):
                group.start_soon(send, text)
                await anyio.lowlevel.checkpoint()  # let each take its place in line, in order
    assert len(set(answers.values())) == 1
    assert emulator.max_concurrent_turns(next(iter(answers.values()))) == 1
    assert queued == ["b", "c"]
    texts = [r.body["input"]["text"].split()[0] for r in emulator.invokes()]
    assert texts == ["a", "b", "c"]


async def test_per_key_state_lives_only_while_the_key_has_turns(
    conversations: Conversations, client: AgentClient, emulator: Any
) -> None:
    echo = await agent(client, "echo")
    keys = [ConversationKey("slack", "T1/C1", f"17000000{index}.0") for index in range(10)]
    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            for index in range(40):  # four turns per key: most of them queue
                group.start_soon(say, conversations, keys[index % 10], f"m{index}", echo)
    assert len(emulator.invokes()) == 40
    for key in keys:
        assert emulator.max_concurrent_turns((await conversations.thread_for(key)).task_id) == 1
    assert conversations._local_locks == {}
    assert conversations._pending == {}
    assert conversations._running == {}


async def test_coalesce_policy_merges_pending_messages_into_one_turn(
    client: AgentClient, store: SessionStore, emulator: Any
) -> None:
    conversations = Conversations(client, store, conversations_config(policy="coalesce"))
    slow = await agent(client, "slow")
    echo = await agent(client, "echo")
    merged: list[bool] = []
    started = anyio.Event()

    async def first() -> None:
        with anyio.fail_after(10):
            async with conversations.turn(
                KEY, Message(text="first"), agent_id=slow, source="slack"
            ) as turn:
                async for event in turn:
                    if isinstance(event, TaskCreated):
                        started.set()

    async def later(text: str) -> None:
        await started.wait()
        async with conversations.turn(
            KEY, Message(text=text), agent_id=echo, source="slack"
        ) as turn:
            async for _ in turn:
                pass
            merged.append(turn.merged)

    async with anyio.create_task_group() as group:
        group.start_soon(first)
        group.start_soon(later, "second")
        group.start_soon(later, "third")
    assert sorted(merged) == [False, True]
    texts = [r.body["input"]["text"] for r in emulator.invokes()]
    assert texts[-1] in ("second\n\nthird", "third\n\nsecond")
    assert len(texts) == 2
    assert conversations._local_locks == {}  # the merged turns let go of the key too


async def test_interrupt_policy_stops_the_running_task_first(
    client: AgentClient, store: SessionStore, emulator: Any
) -> None:
    conversations = Conversations(client, store, conversations_config(policy="interrupt"))
    slow = await agent(client, "slow")
    started = anyio.Event()
    outcome: list[str] = []

    async def first() -> None:
        try:
            async with conversations.turn(
                KEY, Message(text="long"), agent_id=slow, source="slack"
            ) as turn:
                async for event in turn:
                    if isinstance(event, TaskCreated):
                        started.set()
        except errors.RunFailedError as exc:
            outcome.append(exc.status)

    async def second() -> None:
        await started.wait()
        async with conversations.turn(
            KEY, Message(text="now this"), agent_id=slow, source="slack"
        ) as turn:
            async for _ in turn:
                pass
        outcome.append("second done")

    with anyio.fail_after(15):
        async with anyio.create_task_group() as group:
            group.start_soon(first)
            group.start_soon(second)
    assert outcome == ["stopped", "second done"]


async def test_switching_agent_starts_a_new_thread(
    conversations: Conversations, client: AgentClient
) -> None:
    first, _ = await say(conversations, KEY, "hi", await agent(client, "echo"))
    await conversations.choose_agent(KEY, await agent(client, "writer"))
    second, _ = await say(conversations, KEY, "chars=100", await agent(client, "writer"))
    assert first[0].task_id != second[0].task_id


async def test_a_redelivered_event_is_seen_once(conversations: Conversations) -> None:
    assert await conversations.first_delivery("Ev123") is True
    assert await conversations.first_delivery("Ev123") is False


async def test_reset_forgets_the_thread_or_the_whole_space(
    conversations: Conversations, client: AgentClient
) -> None:
    echo = await agent(client, "echo")
    other = ConversationKey("slack", "T1/C1", "1700000000.000200")
    await say(conversations, KEY, "one", echo)
    await say(conversations, other, "two", echo)
    assert await conversations.reset(KEY) == 1
    assert await conversations.thread_for(KEY) is None
    assert await conversations.thread_for(other) is not None
    assert await conversations.reset(other, scope="space") == 1
    assert await conversations.thread_for(other) is None


async def test_a_handle_continues_the_thread_from_another_key(
    conversations: Conversations, client: AgentClient
) -> None:
    echo = await agent(client, "echo")
    events, _ = await say(conversations, KEY, "one", echo)
    handle = conversations.seal(echo, events[0].task_id, owner="U1")
    elsewhere = ConversationKey("mcp", "session-2", echo)
    ref = await conversations.continue_with(elsewhere, handle, principal="U1")
    again, _ = await say(conversations, elsewhere, "two", echo)
    assert again[-1].task_id == ref.task_id == events[0].task_id


def test_a_tampered_or_expired_handle_or_another_owner_is_refused() -> None:
    sealer = HandleSealer(SecretStr("secret"))
    handle = sealer.seal("agent", "task", owner="U1")
    body, mac = handle.rsplit(".", 1)
    with pytest.raises(errors.HandleError) as caught:
        sealer.open(body + "." + mac[::-1])
    assert caught.value.reason == "signature does not match"
    with pytest.raises(errors.HandleError):
        HandleSealer(SecretStr("other")).open(handle)
    with pytest.raises(errors.HandleError) as caught:
        HandleSealer(SecretStr("secret"), ttl=-1).open(
            HandleSealer(SecretStr("secret"), ttl=-1).seal("a", "t")
        )
    assert caught.value.reason == "expired"
    with pytest.raises(errors.OwnershipError):
        sealer.open(handle, principal="U2")
    with pytest.raises(errors.HandleError):
        sealer.open("not a handle")
    assert sealer.open(handle, principal="U1").task_id == "task"


async def test_a_failed_turn_raises_and_the_record_is_dropped_when_handled(
    conversations: Conversations, client: AgentClient, store: SessionStore
) -> None:
    with pytest.raises(errors.RunFailedError):
        await say(conversations, KEY, "fail", await agent(client, "failing"))
    # The body raised, so the turn stays recorded for recovery to deliver.
    assert len(await store.list_turns()) == 1


async def test_recovery_delivers_an_orphaned_turn_exactly_once(
    conversations: Conversations, client: AgentClient, store: SessionStore
) -> None:
    echo = await agent(client, "echo")
    task = await client.invoke(echo, "finished while nobody watched")
    await store.record_turn(
        InFlightTurn(
            turn_id="t1",
            key=str(KEY),
            adapter="slack",
            agent_id=echo,
            text="x",
            source="slack",
            task_id=task.id,
            holder="dead-replica",
            reply={"ts": "1.2"},
        )
    )
    delivered: list[tuple[str, Task | None]] = []

    async def deliver(record: InFlightTurn, result: Task | None, error: Exception | None) -> None:
        delivered.append((record.reply["ts"], result))

    assert await conversations.recover("slack", deliver) == 1
    assert await conversations.recover("slack", deliver) == 0
    assert [(ts, t.result if t else None) for ts, t in delivered] == [
        ("1.2", "finished while nobody watched")
    ]
    assert await store.list_turns() == []


async def test_recovery_skips_turns_of_a_live_replica(
    conversations: Conversations, client: AgentClient, store: SessionStore
) -> None:
    await store.acquire_lock("replica:alive", "alive", 30)
    await store.record_turn(
        InFlightTurn(
            turn_id="t2",
            key=str(KEY),
            adapter="slack",
            agent_id="a",
            text="x",
            source="slack",
            holder="alive",
        )
    )

    async def deliver(*_: Any) -> None:
        raise AssertionError("must not deliver a live replica's turn")

    assert await conversations.recover("slack", deliver) == 0


async def test_recovery_reruns_a_turn_that_never_reached_the_platform(
    conversations: Conversations, client: AgentClient, store: SessionStore, emulator: Any
) -> None:
    echo = await agent(client, "echo")
    await store.record_turn(
        InFlightTurn(
            turn_id="t3",
            key=str(KEY),
            adapter="slack",
            agent_id=echo,
            text="resend me",
            source="slack",
            holder="dead",
            started_at=time.time(),
        )
    )
    results: list[str | None] = []

    async def deliver(record: InFlightTurn, result: Task | None, error: Exception | None) -> None:
        results.append(result.result if result else None)

    assert await conversations.recover("slack", deliver) == 1
    assert results == ["resend me"]
    assert emulator.invokes()[-1].body["source"] == "slack"
    assert (await conversations.thread_for(KEY)) is not None


async def test_text_streams_through_the_turn(
    conversations: Conversations, client: AgentClient
) -> None:
    events, turn = await say(
        conversations, KEY, "chars=300 chunks=10", await agent(client, "writer")
    )
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert turn.task is not None and text == turn.task.result


def _orphan(turn_id: str, agent_id: str, text: str, **fields: Any) -> InFlightTurn:
    return InFlightTurn(
        turn_id=turn_id,
        key=str(KEY),
        adapter="slack",
        agent_id=agent_id,
        text=text,
        source="slack",
        holder="dead",
        **fields,
    )


async def _recover_one(conversations: Conversations) -> list[str | None]:
    results: list[str | None] = []

    async def deliver(record: InFlightTurn, result: Task | None, error: Exception | None) -> None:
        results.append(result.result if result else None)

    with anyio.fail_after(10):
        assert await conversations.recover("slack", deliver) == 1
    return results


async def test_recovery_follows_a_new_thread_that_started_before_task_created_was_recorded(
    conversations: Conversations, client: AgentClient, store: SessionStore, emulator: Any
) -> None:
    echo = await agent(client, "echo")
    # The replica recorded its checkpoint, sent the invoke, and died before task_created.
    checkpoint = await client.checkpoint("sent before the crash")
    async with client.stream(echo, "sent before the crash", checkpoint=checkpoint) as run:
        await run.result()
    await store.record_turn(
        _orphan("t4", echo, "sent before the crash", new_thread_id=checkpoint.task_id)
    )
    assert await _recover_one(conversations) == ["sent before the crash"]
    assert len(emulator.invokes()) == 1
    ref = await conversations.thread_for(KEY)
    assert ref is not None and ref.task_id == checkpoint.task_id


async def test_recovery_sends_a_new_thread_that_never_started_under_its_recorded_id(
    conversations: Conversations, client: AgentClient, store: SessionStore, emulator: Any
) -> None:
    echo = await agent(client, "echo")
    await client.invoke(echo, "shows the platform keeps chosen ids")
    checkpoint = await client.checkpoint("never sent")
    await store.record_turn(_orphan("t5", echo, "never sent", new_thread_id=checkpoint.task_id))
    assert await _recover_one(conversations) == ["never sent"]
    assert emulator.invokes()[-1].body["id"] == checkpoint.task_id
    assert len(emulator.task(str(checkpoint.task_id)).turns) == 1


async def test_recovery_tells_an_appended_continued_turn_from_an_earlier_one_with_its_text(
    conversations: Conversations, client: AgentClient, store: SessionStore, emulator: Any
) -> None:
    echo = await agent(client, "echo")
    first = await client.invoke(echo, "same words")
    appended = await client.checkpoint("same words", thread=first.id)
    await client.invoke(echo, "same words", thread=first.id)
    await store.record_turn(
        _orphan("t6", echo, "same words", thread=first.id, thread_messages=appended.baseline)
    )
    assert await _recover_one(conversations) == ["same words"]
    assert len(emulator.task(first.id).turns) == 2
    # Not appended: the same text, but nothing after the recorded message count.
    not_appended = await client.checkpoint("same words", thread=first.id)
    await store.record_turn(
        _orphan("t7", echo, "same words", thread=first.id, thread_messages=not_appended.baseline)
    )
    assert await _recover_one(conversations) == ["same words"]
    assert len(emulator.task(first.id).turns) == 3


async def test_recovery_that_cannot_tell_whether_a_turn_started_delivers_an_error_and_sends_nothing(
    conversations: Conversations, client: AgentClient, store: SessionStore, emulator: Any
) -> None:
    echo = await agent(client, "echo")
    await client.invoke(echo, "shows the platform keeps chosen ids")
    checkpoint = await client.checkpoint("unknowable")
    await store.record_turn(_orphan("t8", echo, "unknowable", new_thread_id=checkpoint.task_id))
    emulator.inject(Fault("status", status=500, path="/v1/tasks/", times=100))
    failures: list[Exception | None] = []

    async def deliver(record: InFlightTurn, result: Task | None, error: Exception | None) -> None:
        failures.append(error)

    with anyio.fail_after(10):
        assert await conversations.recover("slack", deliver) == 1
    [failure] = failures
    assert isinstance(failure, errors.TurnUnknownError)
    assert failure.task_id == checkpoint.task_id
    assert [r.json["input"]["text"] for r in emulator.invokes()] == [
        "shows the platform keeps chosen ids"
    ]


async def test_coalesce_never_merges_another_senders_message_into_a_turn(
    client: AgentClient, store: SessionStore, emulator: Any
) -> None:
    conversations = Conversations(client, store, conversations_config(policy="coalesce"))
    slow = await agent(client, "slow")
    echo = await agent(client, "echo")
    started = anyio.Event()
    alice, bob = User(email="alice@example.com"), User(email="bob@example.com")

    async def first() -> None:
        with anyio.fail_after(10):
            message = Message(text="alice first", user=alice, principal="alice")
            async with conversations.turn(KEY, message, agent_id=slow, source="slack") as turn:
                async for event in turn:
                    if isinstance(event, TaskCreated):
                        started.set()

    async def later(text: str, user: User, principal: str) -> None:
        await started.wait()
        message = Message(text=text, user=user, principal=principal)
        async with conversations.turn(KEY, message, agent_id=echo, source="slack") as turn:
            async for _ in turn:
                pass

    async with anyio.create_task_group() as group:
        group.start_soon(first)
        group.start_soon(later, "bob's message", bob, "bob")
        group.start_soon(later, "alice second", alice, "alice")
        group.start_soon(later, "alice third", alice, "alice")
    sent = [(r.body["input"]["text"], r.body["input"]["user"]["email"]) for r in emulator.invokes()]
    assert ("bob's message", "bob@example.com") in sent
    assert not [text for text, email in sent if "bob" in text and email != "bob@example.com"]
    assert not [text for text, email in sent if "alice" in text and email != "alice@example.com"]
    assert len(sent) == 3  # alice's two queued messages merged; bob's alone


async def test_a_continued_thread_is_mapped_again_only_once_its_mapping_is_old(
    conversations: Conversations, client: AgentClient, store: SessionStore
) -> None:
    echo = await agent(client, "echo")
    await say(conversations, KEY, "one", echo)
    first = await store.get_thread(str(KEY))
    assert first is not None
    await say(conversations, KEY, "two", echo)
    assert await store.get_thread(str(KEY)) == first  # mapped a moment ago: left as it is
    stale = first.model_copy(update={"updated_at": first.updated_at - MAPPING_REFRESH - 1})
    await store.put_thread(str(KEY), stale)
    await say(conversations, KEY, "three", echo)
    again = await store.get_thread(str(KEY))
    assert again is not None and again.updated_at >= first.updated_at  # written again
    assert (again.task_id, again.owner, again.created_at) == (
        first.task_id,
        first.owner,
        first.created_at,
    )
