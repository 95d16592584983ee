"""Conformance checks of `SessionStore.take_token`, the per-user token bucket every replica
shares, and its race between processes (no more than a bucket's worth admitted)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio

from bridge.stores import SessionStore

__all__ = ["BUCKET_CHECKS", "SHARED_CAPACITY", "SLOW_REFILL", "take_shared_token"]

SLOW_REFILL = 1 / 3600
"""Tokens per second of a bucket that refills no whole token while a check runs."""


async def _takes(store: SessionStore, key: str, count: int, capacity: float = 3) -> list[bool]:
    return [
        await store.take_token(key, capacity=capacity, refill_per_second=SLOW_REFILL) == 0.0
        for _ in range(count)
    ]


async def check_bucket_admits_its_capacity_then_says_how_long_to_wait(
    store: SessionStore,
) -> None:
    assert await _takes(store, "telegram|7", 3) == [True, True, True]
    wait = await store.take_token("telegram|7", capacity=3, refill_per_second=SLOW_REFILL)
    assert 0 < wait <= 1 / SLOW_REFILL
    assert await _takes(store, "telegram|7", 2) == [False, False]


async def check_buckets_are_per_key_and_exact(store: SessionStore) -> None:
    keys = ["slack|T1:U1", "slack|T1:u1", "slack|T1:U1 ", "a b\n'\"%_*?[]\\ü"]
    for key in keys:
        assert await _takes(store, key, 2, capacity=1) == [True, False], key


async def check_bucket_refills_evenly_up_to_its_capacity(store: SessionStore) -> None:
    rate = 4.0  # a token every 250 ms

    async def take() -> bool:
        return await store.take_token("k", capacity=2, refill_per_second=rate) == 0.0

    assert [await take(), await take()] == [True, True]
    with anyio.fail_after(5):
        # Refill happens inside the store: there is no event to wait on.
        while not await take():  # noqa: ASYNC110
            await anyio.sleep(0.02)
    # Long enough for six tokens, but a bucket never holds more than its capacity.
    await anyio.sleep(6 / rate)
    assert [await take(), await take(), await take()] == [True, True, False]


async def check_take_token_is_atomic_under_concurrency(store: SessionStore) -> None:
    results: list[bool] = [False] * 40

    async def take(index: int) -> None:
        wait = await store.take_token("race", capacity=5, refill_per_second=SLOW_REFILL)
        results[index] = wait == 0.0

    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            for index in range(40):
                group.start_soon(take, index)
    assert results.count(True) == 5


async def check_bucket_arguments_must_be_positive(store: SessionStore) -> None:
    calls: list[Callable[[], Awaitable[float]]] = [
        lambda: store.take_token("k", capacity=0, refill_per_second=1),
        lambda: store.take_token("k", capacity=-1, refill_per_second=1),
        lambda: store.take_token("k", capacity=1, refill_per_second=0),
        lambda: store.take_token("k", capacity=1, refill_per_second=-2),
    ]
    for call in calls:
        try:
            await call()
        except ValueError:
            continue
        raise AssertionError("a bucket with a non-positive capacity or rate was accepted")


BUCKET_CHECKS = (
    check_bucket_admits_its_capacity_then_says_how_long_to_wait,
    check_buckets_are_per_key_and_exact,
    check_bucket_refills_evenly_up_to_its_capacity,
    check_take_token_is_atomic_under_concurrency,
    check_bucket_arguments_must_be_positive,
)
"""The token bucket's conformance checks; each takes an opened, empty store."""

SHARED_CAPACITY = 5
"""Capacity of the bucket `take_shared_token` racers share."""


async def take_shared_token(store: SessionStore, _ident: str, _owner: str) -> bool:
    """One racer's try at the one bucket all racers share (a `RACE_OPERATIONS` entry):
    across every process and round, `SHARED_CAPACITY` tries succeed."""
    wait = await store.take_token(
        "race-bucket", capacity=SHARED_CAPACITY, refill_per_second=SLOW_REFILL
    )
    return wait == 0.0
