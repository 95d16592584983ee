"""Conformance checks every `SessionStore` must pass, and races between processes.

Each `check_*` takes an opened, empty store and fails with `AssertionError`;
`STORE_CHECKS` lists them so a suite can run one test per behaviour. The
redis-server helpers live in `_redis_server` and are re-exported here.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from functools import partial
from typing import Any

import anyio
import anyio.to_thread
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream

from bridge.errors import StoreError
from bridge.stores import InFlightTurn, SessionStore, ThreadRef, open_store
from bridge.testing._buckets import BUCKET_CHECKS, take_shared_token
from bridge.testing._redis_server import (
    REDIS_INSTALL_HINT,
    blocking_redis_server,
    run_redis_server,
)

__all__ = [
    "RACE_OPERATIONS",
    "REDIS_INSTALL_HINT",
    "RETENTION",
    "RETENTION_CHECKS",
    "STORE_CHECKS",
    "StoreCheck",
    "blocking_redis_server",
    "race_in_processes",
    "run_redis_server",
]

StoreCheck = Callable[[SessionStore], Awaitable[None]]
LEASE = 0.2
"""Lease and TTL used where a check waits for expiry: short, but not flaky."""


def _ref(task_id: str = "task-1", **fields: Any) -> ThreadRef:
    defaults: dict[str, Any] = {"agent_id": "agent-1", "created_at": 1.0, "updated_at": 1.0}
    return ThreadRef(task_id=task_id, **(defaults | fields))


def _turn(turn_id: str, started_at: float = 1000.0, **fields: Any) -> InFlightTurn:
    defaults: dict[str, Any] = {"key": "slack:T1/C1:1.0", "adapter": "slack", "agent_id": "a1"}
    defaults |= {"text": "hello", "source": "slack"}
    return InFlightTurn(turn_id=turn_id, started_at=started_at, **(defaults | fields))


async def _concurrently(count: int, call: Callable[[int], Awaitable[bool]]) -> list[bool]:
    results: list[bool] = [False] * count

    async def run(index: int) -> None:
        results[index] = await call(index)

    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            for index in range(count):
                group.start_soon(run, index)
    return results


async def _eventually(condition: Callable[[], Awaitable[bool]]) -> None:
    """Poll `condition` until it holds; fails after 5 seconds."""
    with anyio.fail_after(5):
        # Expiry happens inside the store: there is no event to wait on.
        while not await condition():  # noqa: ASYNC110
            await anyio.sleep(LEASE / 4)


# -- mapping -----------------------------------------------------------------
async def check_thread_round_trips(store: SessionStore) -> None:
    key = "slack:T1/C1:1700000.000"
    assert await store.get_thread(key) is None
    ref = _ref(owner="U1", created_at=1.5, updated_at=2.5)
    await store.put_thread(key, ref)
    assert await store.get_thread(key) == ref
    assert await store.get_thread("slack:T1/C1:1700000.001") is None


async def check_put_thread_replaces(store: SessionStore) -> None:
    await store.put_thread("k", _ref("task-1"))
    await store.put_thread("k", _ref("task-2", agent_id="agent-2"))
    assert await store.get_thread("k") == _ref("task-2", agent_id="agent-2")


async def check_thread_keys_are_exact_and_unicode_safe(store: SessionStore) -> None:
    keys = ["telegram:-100/7:ü✓", "Telegram:-100/7:ü✓", "a b\n'\"%_*?[]\\"]
    for index, key in enumerate(keys):
        await store.put_thread(key, _ref(f"task-{index}"))
    for index, key in enumerate(keys):
        assert await store.get_thread(key) == _ref(f"task-{index}")


async def check_delete_thread_reports_whether_it_existed(store: SessionStore) -> None:
    await store.put_thread("k", _ref())
    assert await store.delete_thread("k") is True
    assert await store.get_thread("k") is None
    assert await store.delete_thread("k") is False


async def check_delete_threads_removes_exactly_the_prefix(store: SessionStore) -> None:
    for key in ["slack:T1/C1:1", "slack:T1/C1:2", "slack:T1/C2:1", "slack:T2/C1:1", "x"]:
        await store.put_thread(key, _ref())
    assert await store.delete_threads("slack:T1/C1:") == 2
    assert await store.get_thread("slack:T1/C1:1") is None
    assert await store.get_thread("slack:T1/C2:1") is not None
    assert await store.delete_threads("slack:") == 2
    assert await store.delete_threads("slack:") == 0
    assert await store.get_thread("x") is not None


async def check_delete_threads_treats_prefix_literally(store: SessionStore) -> None:
    survivors = ["ab", "aXc", "Ab", "a\\b", "a]"]
    for key in [*survivors, "a%1", "a_1", "a*1", "a?1", "a[b]1"]:
        await store.put_thread(key, _ref())
    for prefix in ["a%", "a_", "a*", "a?", "a[b]"]:
        assert await store.delete_threads(prefix) == 1, prefix
    assert await store.delete_threads("a[") == 0
    for key in survivors:
        assert await store.get_thread(key) is not None, key


# -- dedupe ------------------------------------------------------------------
async def check_mark_seen_is_true_only_the_first_time(store: SessionStore) -> None:
    assert await store.mark_seen("ev-1", 60) is True
    assert await store.mark_seen("ev-1", 60) is False
    assert await store.mark_seen("ev-2", 60) is True


async def check_mark_seen_forgets_after_ttl(store: SessionStore) -> None:
    assert await store.mark_seen("ev-1", LEASE) is True
    assert await store.mark_seen("ev-1", LEASE) is False
    await _eventually(lambda: store.mark_seen("ev-1", 60))
    assert await store.mark_seen("ev-1", 60) is False


async def check_mark_seen_is_atomic_under_concurrency(store: SessionStore) -> None:
    results = await _concurrently(50, lambda _: store.mark_seen("ev-race", 60))
    assert results.count(True) == 1


# -- in-flight ledger ----------------------------------------------------------
async def check_turn_round_trips(store: SessionStore) -> None:
    assert await store.get_turn("t1") is None
    turn = _turn("t1", user={"id": "U1", "name": "Ann"}, task_id="task-9", holder="replica-1")
    turn = turn.model_copy(update={"reply": {"channel": "C1", "ts": "1.2", "parts": [1, None]}})
    await store.record_turn(turn)
    assert await store.get_turn("t1") == turn


async def check_record_turn_replaces_by_turn_id(store: SessionStore) -> None:
    await store.record_turn(_turn("t1"))
    updated = _turn("t1", task_id="task-2", reply={"ts": "9"}, heartbeat_at=2000.0)
    await store.record_turn(updated)
    assert await store.get_turn("t1") == updated
    assert await store.list_turns() == [updated]


async def check_list_turns_is_oldest_first(store: SessionStore) -> None:
    turns = [_turn("t-mid", 20.0), _turn("t-new", 30.0), _turn("t-old", 10.0)]
    for turn in turns:
        await store.record_turn(turn)
    assert [turn.turn_id for turn in await store.list_turns()] == ["t-old", "t-mid", "t-new"]


async def check_drop_turn_removes_only_that_turn(store: SessionStore) -> None:
    await store.record_turn(_turn("t1"))
    await store.record_turn(_turn("t2"))
    await store.drop_turn("t1")
    await store.drop_turn("never-recorded")
    assert await store.get_turn("t1") is None
    assert [turn.turn_id for turn in await store.list_turns()] == ["t2"]


async def check_claim_delivery_is_true_exactly_once(store: SessionStore) -> None:
    await store.record_turn(_turn("t1"))
    assert await store.claim_delivery("t1") is True
    assert await store.claim_delivery("t1") is False
    assert await store.claim_delivery("t2") is True


async def check_claim_delivery_survives_drop_turn(store: SessionStore) -> None:
    await store.record_turn(_turn("t1"))
    assert await store.claim_delivery("t1") is True
    await store.drop_turn("t1")
    assert await store.claim_delivery("t1") is False


async def check_claim_delivery_is_atomic_under_concurrency(store: SessionStore) -> None:
    results = await _concurrently(50, lambda _: store.claim_delivery("t-race"))
    assert results.count(True) == 1


async def check_record_turn_with_a_thread_maps_its_key(store: SessionStore) -> None:
    turn = _turn("t1", key="slack|T1/C1|1")
    await store.record_turn(turn, thread=_ref("task-1"))
    assert await store.get_turn("t1") == turn
    assert await store.get_thread("slack|T1/C1|1") == _ref("task-1")
    updated = turn.model_copy(update={"task_id": "task-2"})
    await store.record_turn(updated, thread=_ref("task-2", owner="U1"))
    assert await store.list_turns() == [updated]
    assert await store.get_thread("slack|T1/C1|1") == _ref("task-2", owner="U1")
    await store.record_turn(turn)  # without a thread: the mapping stays as it is
    assert await store.get_thread("slack|T1/C1|1") == _ref("task-2", owner="U1")
    await store.record_turn(_turn("t2", key="slack|T1/C2|1"), thread=_ref("task-3"))
    assert await store.delete_threads("slack|T1/C1|") == 1
    assert await store.get_thread("slack|T1/C1|1") is None
    assert await store.get_thread("slack|T1/C2|1") == _ref("task-3")
    assert await store.delete_thread("slack|T1/C2|1") is True
    assert [turn.turn_id for turn in await store.list_turns()] == ["t1", "t2"]


async def check_finish_turn_claims_drops_and_releases(store: SessionStore) -> None:
    await store.record_turn(_turn("t1"))
    await store.record_turn(_turn("t2"))
    assert await store.acquire_lock("turn:k", "a", 30) is True
    assert await store.finish_turn("t1", lock="turn:k", owner="b") is True
    assert await store.get_turn("t1") is None
    assert await store.lock_owner("turn:k") == "a"  # another owner's lock is left alone
    assert await store.finish_turn("t1", lock="turn:k", owner="a") is False
    assert await store.lock_owner("turn:k") is None
    assert await store.claim_delivery("t1") is False
    assert await store.acquire_lock("turn:k", "a", 30) is True
    assert await store.finish_turn("t2") is True  # without a lock: none is released
    assert await store.lock_owner("turn:k") == "a"
    assert await store.list_turns() == []
    assert await store.finish_turn("never-recorded") is True


async def check_finish_turn_has_one_winner_between_two_store_objects(store: SessionStore) -> None:
    async with AsyncExitStack() as stack:
        other = store
        if not store.url.startswith("memory:"):  # a memory store is its own backend
            other = open_store(store.url)
            await other.open()
            stack.push_async_callback(other.close)
        for round_index, owner in enumerate(["a", "b"] * 5):
            turn_id = f"t{round_index}"
            await store.record_turn(_turn(turn_id))
            assert await store.acquire_lock("turn:k", "a", 30) is True
            results = await _concurrently(2, partial(_finish_on, (store, other), turn_id, owner))
            assert results.count(True) == 1, round_index
            assert await other.get_turn(turn_id) is None
            assert await other.lock_owner("turn:k") == (None if owner == "a" else "a")


async def _finish_on(
    stores: tuple[SessionStore, ...], turn_id: str, owner: str, index: int
) -> bool:
    return await stores[index].finish_turn(turn_id, lock="turn:k", owner=owner)


# -- leased locks --------------------------------------------------------------
async def check_acquire_lock_and_get_thread_reads_the_mapping(store: SessionStore) -> None:
    assert await store.acquire_lock_and_get_thread("turn:k", "a", 30, "k") == (True, None)
    await store.put_thread("k", _ref(owner="U1"))
    assert await store.acquire_lock_and_get_thread("turn:k", "a", 30, "k") == (
        True,
        _ref(owner="U1"),
    )
    assert await store.lock_owner("turn:k") == "a"
    await store.release_lock("turn:k", "a")
    assert await store.acquire_lock_and_get_thread("turn:k", "b", 30, "k") == (
        True,
        _ref(owner="U1"),
    )
    assert await store.lock_owner("turn:k") == "b"


async def check_acquire_lock_and_get_thread_held_by_another_owner(store: SessionStore) -> None:
    await store.put_thread("k", _ref())
    assert await store.acquire_lock("turn:k", "a", 30) is True
    assert await store.acquire_lock_and_get_thread("turn:k", "b", 30, "k") == (False, None)
    assert await store.lock_owner("turn:k") == "a"
    assert await store.acquire_lock_and_get_thread("turn:other", "b", 30, "k") == (True, _ref())


async def check_acquire_lock_and_get_thread_takes_an_expired_lease(store: SessionStore) -> None:
    await store.put_thread("k", _ref())
    assert await store.acquire_lock("turn:k", "a", LEASE) is True

    async def taken() -> bool:
        return await store.acquire_lock_and_get_thread("turn:k", "b", 30, "k") == (True, _ref())

    await _eventually(taken)
    assert await store.lock_owner("turn:k") == "b"
    assert await store.renew_lock("turn:k", "a", 30) is False


async def check_lock_excludes_other_owners(store: SessionStore) -> None:
    assert await store.lock_owner("turn:k") is None
    assert await store.acquire_lock("turn:k", "a", 30) is True
    assert await store.acquire_lock("turn:k", "b", 30) is False
    assert await store.lock_owner("turn:k") == "a"
    assert await store.acquire_lock("turn:other", "b", 30) is True


async def check_same_owner_reacquire_refreshes_lease(store: SessionStore) -> None:
    assert await store.acquire_lock("k", "a", LEASE) is True
    assert await store.acquire_lock("k", "a", 30) is True
    await anyio.sleep(LEASE * 2)  # past the first lease: only the refresh keeps it
    assert await store.lock_owner("k") == "a"
    assert await store.acquire_lock("k", "b", 30) is False


async def check_release_lock_only_by_owner(store: SessionStore) -> None:
    assert await store.acquire_lock("k", "a", 30) is True
    await store.release_lock("k", "b")
    assert await store.lock_owner("k") == "a"
    await store.release_lock("k", "a")
    assert await store.lock_owner("k") is None
    await store.release_lock("k", "a")
    assert await store.acquire_lock("k", "b", 30) is True


async def check_renew_lock_only_by_holder(store: SessionStore) -> None:
    assert await store.renew_lock("k", "a", 30) is False
    assert await store.acquire_lock("k", "a", 30) is True
    assert await store.renew_lock("k", "b", 30) is False
    assert await store.renew_lock("k", "a", 30) is True
    assert await store.lock_owner("k") == "a"


async def check_renewed_lease_outlives_the_original(store: SessionStore) -> None:
    assert await store.acquire_lock("k", "a", LEASE) is True
    assert await store.renew_lock("k", "a", 30) is True
    await anyio.sleep(LEASE * 2)  # past the original lease
    assert await store.lock_owner("k") == "a"
    assert await store.acquire_lock("k", "b", 30) is False


async def check_expired_lease_can_be_taken_over(store: SessionStore) -> None:
    assert await store.acquire_lock("k", "a", LEASE) is True
    await _eventually(lambda: store.acquire_lock("k", "b", 30))
    assert await store.lock_owner("k") == "b"


async def check_expired_lease_has_no_owner(store: SessionStore) -> None:
    assert await store.acquire_lock("k", "a", LEASE) is True

    async def is_free() -> bool:
        return await store.lock_owner("k") is None

    await _eventually(is_free)
    assert await store.renew_lock("k", "a", 30) is False


async def check_renew_after_losing_the_lock_returns_false(store: SessionStore) -> None:
    assert await store.acquire_lock("k", "a", LEASE) is True
    await _eventually(lambda: store.acquire_lock("k", "b", 30))
    assert await store.renew_lock("k", "a", 30) is False
    await store.release_lock("k", "a")
    assert await store.lock_owner("k") == "b"


async def check_lock_acquire_is_atomic_under_concurrency(store: SessionStore) -> None:
    results = await _concurrently(20, lambda index: store.acquire_lock("k", f"o{index}", 30))
    assert results.count(True) == 1
    assert await store.lock_owner("k") == f"o{results.index(True)}"


# -- arguments and lifecycle ---------------------------------------------------
async def check_nonpositive_durations_are_rejected(store: SessionStore) -> None:
    calls: list[Callable[[float], Awaitable[bool]]] = [
        lambda ttl: store.mark_seen("ev", ttl),
        lambda lease: store.acquire_lock("k", "a", lease),
        lambda lease: store.renew_lock("k", "a", lease),
        lambda lease: _acquire_reading(store, "k", "a", lease),
        lambda ttl: _put_record(store, ttl),
    ]
    for call in calls:
        for bad in (0.0, -1.0):
            try:
                await call(bad)
            except ValueError:
                continue
            raise AssertionError(f"duration {bad!r} was accepted")


async def check_open_and_close_are_idempotent(store: SessionStore) -> None:
    await store.put_thread("k", _ref())
    await store.open()
    await store.close()
    await store.close()
    try:
        await store.get_thread("k")
    except StoreError as exc:
        assert exc.url == store.url
    else:
        raise AssertionError("a closed store answered")
    await store.open()
    assert await store.get_thread("k") == _ref()


# -- shared secrets and records ---------------------------------------------------
async def check_ensure_secret_keeps_the_first_value(store: SessionStore) -> None:
    assert await store.ensure_secret("handles", "first") == "first"
    assert await store.ensure_secret("handles", "second") == "first"
    assert await store.ensure_secret("other", "third") == "third"


async def check_ensure_secret_is_atomic_under_concurrency(store: SessionStore) -> None:
    results: list[str] = [""] * 20

    async def ensure(index: int) -> bool:
        results[index] = await store.ensure_secret("shared", f"candidate-{index}")
        return True

    await _concurrently(20, ensure)
    assert len(set(results)) == 1
    assert results[0].startswith("candidate-")


async def check_records_round_trip_and_are_replaced(store: SessionStore) -> None:
    assert await store.get_record("run:1") is None
    await store.put_record("run:1", '{"a": "é"}', 60)
    assert await store.get_record("run:1") == '{"a": "é"}'
    await store.put_record("run:1", "second", 60)
    assert await store.get_record("run:1") == "second"
    assert await store.get_record("run:") is None


async def check_records_expire_after_ttl(store: SessionStore) -> None:
    await store.put_record("short", "v", LEASE)
    await _eventually(lambda: _is_none(store.get_record("short")))


async def _acquire_reading(store: SessionStore, name: str, owner: str, lease: float) -> bool:
    taken, _ = await store.acquire_lock_and_get_thread(name, owner, lease, name)
    return taken


async def _put_record(store: SessionStore, ttl: float) -> bool:
    await store.put_record("r", "v", ttl)
    return True


async def _is_none(value: Awaitable[Any]) -> bool:
    return await value is None


STORE_CHECKS: tuple[StoreCheck, ...] = (
    *(check for name, check in sorted(globals().items()) if name.startswith("check_")),
    *BUCKET_CHECKS,
)
"""Every conformance check; each takes an opened, empty store."""


# -- retention -----------------------------------------------------------------
RETENTION = LEASE
"""`thread_retention` and `claim_ttl` of the store the retention checks take."""


async def retention_check_threads_expire(store: SessionStore) -> None:
    await store.put_thread("slack|T1/C1|1", _ref("task-1"))
    await store.put_thread("slack|T1/C1|2", _ref("task-2"))
    assert await store.get_thread("slack|T1/C1|1") == _ref("task-1")

    async def forgotten() -> bool:
        return await store.get_thread("slack|T1/C1|1") is None

    await _eventually(forgotten)
    assert await store.get_thread("slack|T1/C1|2") is None
    assert await store.delete_thread("slack|T1/C1|1") is False
    assert await store.delete_threads("slack|") == 0
    await store.put_thread("slack|T1/C1|1", _ref("task-3"))
    assert await store.get_thread("slack|T1/C1|1") == _ref("task-3")
    assert await store.delete_threads("slack|") == 1


async def retention_check_threads_mapped_with_a_turn_expire(store: SessionStore) -> None:
    await store.record_turn(_turn("t-mapped", key="slack|T9/C1|1"), thread=_ref("task-1"))
    assert await store.get_thread("slack|T9/C1|1") == _ref("task-1")
    await _eventually(lambda: _is_none(store.get_thread("slack|T9/C1|1")))
    assert await store.delete_threads("slack|T9/") == 0
    assert "t-mapped" in [turn.turn_id for turn in await store.list_turns()]


async def retention_check_claims_made_by_finish_turn_expire(store: SessionStore) -> None:
    assert await store.finish_turn("t-finished") is True
    assert await store.finish_turn("t-finished") is False
    await _eventually(lambda: store.finish_turn("t-finished"))


async def retention_check_answer_claims_expire(store: SessionStore) -> None:
    assert await store.claim_delivery("t1") is True
    assert await store.claim_delivery("t1") is False
    await _eventually(lambda: store.claim_delivery("t1"))
    assert await store.claim_delivery("t1") is False


async def retention_check_ledger_and_locks_do_not_expire(store: SessionStore) -> None:
    await store.record_turn(_turn("t1"))
    assert await store.acquire_lock("k", "a", 30) is True
    await store.put_thread("x", _ref())
    await _eventually(lambda: _is_none(store.get_thread("x")))
    assert [turn.turn_id for turn in await store.list_turns()] == ["t1"]
    assert await store.lock_owner("k") == "a"


RETENTION_CHECKS: tuple[StoreCheck, ...] = tuple(
    check for name, check in sorted(globals().items()) if name.startswith("retention_check_")
)
"""Checks of a store opened with `thread_retention` and `claim_ttl` set to `RETENTION`."""


# -- races between processes ---------------------------------------------------
async def _ensure_own_secret(store: SessionStore, ident: str, owner: str) -> bool:
    """True for the one racer whose candidate became the stored secret."""
    return await store.ensure_secret(ident, owner) == owner


RACE_OPERATIONS: dict[str, Callable[[SessionStore, str, str], Awaitable[bool]]] = {
    "mark_seen": lambda store, ident, _owner: store.mark_seen(ident, 60),
    "claim_delivery": lambda store, ident, _owner: store.claim_delivery(ident),
    "acquire_lock": lambda store, ident, owner: store.acquire_lock(ident, owner, 60),
    "acquire_lock_and_get_thread": lambda store, ident, owner: _acquire_reading(
        store, ident, owner, 60
    ),
    "finish_turn": lambda store, ident, owner: store.finish_turn(ident, lock=ident, owner=owner),
    "ensure_secret": _ensure_own_secret,
    "take_token": take_shared_token,
}
"""Operations several processes race on. Each round of all but `take_token` has one winner;
every `take_token` try takes from one bucket, so `SHARED_CAPACITY` tries win in all."""


async def _race_child(url: str, operation: str, rounds: str) -> None:
    """Child side of `race_in_processes`: stdout is its reply channel to the parent."""
    async with AsyncExitStack() as stack:
        store = open_store(url)
        await store.open()
        stack.push_async_callback(store.close)
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        await anyio.to_thread.run_sync(sys.stdin.readline)
        call, owner = RACE_OPERATIONS[operation], f"pid-{os.getpid()}"
        results = [await call(store, f"race-{i}", owner) for i in range(int(rounds))]
        sys.stdout.write(json.dumps(results) + "\n")
        sys.stdout.flush()


_CHILD = (
    "import sys, anyio; from bridge.testing._stores import _race_child as main; "
    "anyio.run(main, *sys.argv[1:])"
)


async def race_in_processes(
    url: str, operation: str, *, processes: int = 3, rounds: int = 20
) -> list[list[bool]]:
    """Run `operation` (a `RACE_OPERATIONS` name) on ids `race-0…` from several
    processes released at once; returns each process's results, in round order.

    Raises `TimeoutError` after 60 seconds."""
    with anyio.fail_after(60):
        async with AsyncExitStack() as stack:
            procs: list[Process] = []
            for _ in range(processes):
                command = [sys.executable, "-c", _CHILD, url, operation, str(rounds)]
                procs.append(
                    await stack.enter_async_context(await anyio.open_process(command, stderr=None))
                )
            readers = [BufferedByteReceiveStream(proc.stdout) for proc in procs if proc.stdout]
            for reader in readers:
                assert await reader.receive_until(b"\n", 1024) == b"ready"
            for proc in procs:
                assert proc.stdin is not None
                await proc.stdin.send(b"go\n")
            return [json.loads(await reader.receive_until(b"\n", 1 << 20)) for reader in readers]
