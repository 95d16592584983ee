"""`hold_lease`: work that runs on one replica at a time, through a store lock."""

from __future__ import annotations

from functools import partial

import anyio

from bridge.stores import MemoryStore, hold_lease

LEASE = 0.3


async def test_only_the_holder_works_and_a_standby_takes_over_when_it_stops() -> None:
    running: dict[str, anyio.Event] = {"a": anyio.Event(), "b": anyio.Event()}
    standing_by = anyio.Event()

    async def work(owner: str) -> None:
        running[owner].set()
        await anyio.sleep_forever()

    async with MemoryStore() as store, anyio.create_task_group() as group:
        first = anyio.CancelScope()

        async def holder_a() -> None:
            with first:
                await hold_lease(store, "poller", "a", LEASE, partial(work, "a"))

        group.start_soon(holder_a)
        with anyio.fail_after(5):
            await running["a"].wait()
        group.start_soon(
            partial(
                hold_lease,
                store,
                "poller",
                "b",
                LEASE,
                partial(work, "b"),
                on_standby=standing_by.set,
            )
        )
        with anyio.fail_after(5):
            await standing_by.wait()
        assert not running["b"].is_set()
        first.cancel()
        with anyio.fail_after(5):
            await running["b"].wait()
        assert await store.lock_owner("poller") == "b"
        group.cancel_scope.cancel()


async def test_a_lost_lock_stops_the_work_until_it_is_taken_back() -> None:
    starts: list[int] = []
    started, stopped, restarted = anyio.Event(), anyio.Event(), anyio.Event()

    async def work() -> None:
        starts.append(len(starts))
        (started if len(starts) == 1 else restarted).set()
        try:
            await anyio.sleep_forever()
        finally:
            stopped.set()

    async with MemoryStore() as store, anyio.create_task_group() as group:
        group.start_soon(hold_lease, store, "poller", "a", LEASE, work)
        with anyio.fail_after(5):
            await started.wait()
            # Another replica takes the lock over (as after an expired lease).
            await store.release_lock("poller", "a")
            assert await store.acquire_lock("poller", "b", LEASE)
            await stopped.wait()
            await restarted.wait()
        assert await store.lock_owner("poller") == "a"
        group.cancel_scope.cancel()


async def test_work_that_returns_gives_the_lock_up() -> None:
    async with MemoryStore() as store:
        worked = []

        async def work() -> None:
            assert await store.lock_owner("once") == "a"
            worked.append(True)

        with anyio.fail_after(5):
            await hold_lease(store, "once", "a", LEASE, work)
        assert worked == [True]
        assert await store.lock_owner("once") is None
