"""Every store implementation passes every conformance check, one test per behaviour."""

from __future__ import annotations

from contextlib import AsyncExitStack

import pytest

from bridge.stores import SessionStore, open_store
from bridge.testing import (
    RACE_OPERATIONS,
    RETENTION,
    RETENTION_CHECKS,
    SHARED_CAPACITY,
    STORE_CHECKS,
    StoreCheck,
    race_in_processes,
)


@pytest.mark.parametrize(
    "check", STORE_CHECKS, ids=[check.__name__.removeprefix("check_") for check in STORE_CHECKS]
)
async def test_store_conforms(store: SessionStore, check: StoreCheck) -> None:
    await check(store)


def test_every_check_is_collected() -> None:
    assert len(STORE_CHECKS) >= 25
    assert len({check.__name__ for check in STORE_CHECKS}) == len(STORE_CHECKS)


@pytest.mark.parametrize(
    "check",
    RETENTION_CHECKS,
    ids=[check.__name__.removeprefix("retention_check_") for check in RETENTION_CHECKS],
)
async def test_store_forgets_threads_and_answers_after_their_retention(
    store_url: str, check: StoreCheck
) -> None:
    store = open_store(store_url, thread_retention=RETENTION, claim_ttl=RETENTION)
    async with AsyncExitStack() as stack:
        await store.open()
        stack.push_async_callback(store.close)
        await check(store)


@pytest.mark.parametrize("operation", sorted(set(RACE_OPERATIONS) - {"take_token"}))
async def test_processes_racing_on_a_shared_store_have_one_winner_per_round(
    shared_store_url: str, operation: str
) -> None:
    # The processes also race to create the SQLite file or the Postgres schema.
    results = await race_in_processes(shared_store_url, operation, processes=3, rounds=20)
    assert len(results) == 3
    for round_index in range(20):
        assert [proc[round_index] for proc in results].count(True) == 1, round_index


async def test_processes_sharing_a_bucket_admit_no_more_than_its_capacity(
    shared_store_url: str,
) -> None:
    results = await race_in_processes(shared_store_url, "take_token", processes=3, rounds=20)
    assert len(results) == 3
    assert sum(taken.count(True) for taken in results) == SHARED_CAPACITY
