"""Store round trips per turn: a new conversation's turn takes four store calls, each one
atomic step (lock and mapping, checkpoint, task id and mapping, delivery and release)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from bridge.client import AgentClient
from bridge.conversations import MAPPING_REFRESH, ConversationKey, Conversations, Message
from bridge.stores import MemoryStore, SessionStore
from tests.conversations.conftest import conversations_config

KEY = ConversationKey("slack", "T1/C1", "1700000000.000100")
_COUNTED = [
    name
    for name in dir(SessionStore)
    if not name.startswith("_") and name not in {"url", "open", "close"}
]


class CountingStore(MemoryStore):
    """A memory store that notes every store method called: its name, with `+thread`
    when a `thread` was passed along."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []


def _counted(name: str) -> Any:
    async def method(self: CountingStore, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(name + ("+thread" if kwargs.get("thread") is not None else ""))
        return await getattr(MemoryStore, name)(self, *args, **kwargs)

    return method


for _name in _COUNTED:
    setattr(CountingStore, _name, _counted(_name))


@pytest.fixture
async def counting() -> AsyncIterator[CountingStore]:
    async with CountingStore() as store:
        yield store


@pytest.fixture
def service(client: AgentClient, counting: CountingStore) -> Conversations:
    # A long lease: no renewal falls inside a turn, so the count is the turn's own.
    return Conversations(client, counting, conversations_config(lock_lease=60.0))


async def _say(service: Conversations, text: str, **kwargs: Any) -> list[str]:
    store = service.store
    assert isinstance(store, CountingStore)
    store.calls.clear()
    echo = (await service.client.find_agent("echo")).id
    with anyio.fail_after(10):
        async with service.turn(
            KEY, Message(text=text, principal="U1"), agent_id=echo, source="slack", **kwargs
        ) as turn:
            assert [event async for event in turn]
    return list(store.calls)


async def test_a_new_conversations_turn_makes_four_store_calls(
    service: Conversations, counting: CountingStore
) -> None:
    assert await _say(service, "one") == [
        "acquire_lock_and_get_thread",
        "record_turn",  # the checkpoint, before the invoke
        "record_turn+thread",  # the task id and the new mapping together
        "finish_turn",  # delivery claim, record dropped, turn lock released
    ]
    ref = await counting.get_thread(str(KEY))
    assert ref is not None and ref.owner == "U1"
    assert await counting.list_turns() == []
    assert await counting.lock_owner(f"turn:{KEY}") is None
    assert await counting.claim_delivery("never-claimed") is True


async def test_a_continued_turn_leaves_a_fresh_mapping_alone(
    service: Conversations, counting: CountingStore
) -> None:
    await _say(service, "one")
    first = await counting.get_thread(str(KEY))
    assert await _say(service, "two") == [
        "acquire_lock_and_get_thread",
        "record_turn",
        "record_turn",  # the task id only: the mapping is younger than MAPPING_REFRESH
        "finish_turn",
    ]
    assert await counting.get_thread(str(KEY)) == first
    assert first is not None
    stale = first.model_copy(update={"updated_at": first.updated_at - MAPPING_REFRESH - 1})
    await counting.put_thread(str(KEY), stale)
    calls = await _say(service, "three")
    assert calls[2] == "record_turn+thread"
    again = await counting.get_thread(str(KEY))
    assert again is not None and again.updated_at > stale.updated_at
    assert (again.task_id, again.created_at) == (first.task_id, first.created_at)


async def test_an_unrecorded_turn_maps_and_releases_on_its_own(
    service: Conversations, counting: CountingStore
) -> None:
    assert await _say(service, "one", recorded=False) == [
        "acquire_lock_and_get_thread",
        "put_thread",
        "release_lock",
    ]
    assert await counting.get_thread(str(KEY)) is not None
    assert await counting.lock_owner(f"turn:{KEY}") is None


async def test_a_turn_lock_lost_to_another_replica_stays_with_it_after_delivery(
    service: Conversations, counting: CountingStore
) -> None:
    echo = (await service.client.find_agent("echo")).id
    lock = f"turn:{KEY}"
    with anyio.fail_after(10):
        async with service.turn(KEY, Message(text="one"), agent_id=echo, source="slack") as turn:
            assert [event async for event in turn]
            # As if the lease ran out mid-turn and another replica took the lock over.
            await counting.release_lock(lock, service.replica_id)
            assert await counting.acquire_lock(lock, "replica-b", 60.0) is True
            counting.calls.clear()
    assert counting.calls == ["finish_turn"]  # released nothing of its own afterwards
    assert await counting.lock_owner(lock) == "replica-b"
    assert await counting.list_turns() == []
