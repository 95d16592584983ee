"""One `getUpdates` consumer per bot: replicas elect a poller through a store lock."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from bridge_telegram.testing import FakeBotAPI

from bridge.emulator import Emulator
from bridge.runtime import open_runtime
from bridge.stores import SessionStore, open_store

from .conftest import ALICE, bridge_setup, running_bridge


async def test_only_one_replica_polls_and_a_standby_takes_over_when_it_stops(
    emulator: Emulator, fake: FakeBotAPI, tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path / 'state.db'}"
    adapters: dict[str, Any] = {}
    started = {name: anyio.Event() for name in ("first", "second")}
    stop_first = anyio.Event()

    async def replica(name: str, until: anyio.Event) -> None:
        async with running_bridge(emulator, fake, store=store, poller_lease=0.6) as (_, adapter):
            adapters[name] = adapter
            started[name].set()
            await until.wait()

    async with anyio.create_task_group() as group:
        group.start_soon(replica, "first", stop_first)
        with anyio.fail_after(10):
            await started["first"].wait()
            await fake.wait_for(lambda: adapters["first"].is_polling)
        group.start_soon(replica, "second", anyio.Event())
        with anyio.fail_after(10):
            await started["second"].wait()
        assert adapters["first"].is_polling
        assert not adapters["second"].is_polling
        stop_first.set()
        with anyio.fail_after(10):
            await fake.wait_for(lambda: adapters["second"].is_polling)
            fake.queue(ALICE.says(fake, ALICE.id, "still answered"))
            await fake.wait_for(
                lambda: any(m.text == "still answered" for m in fake.sent(ALICE.id))
            )
        group.cancel_scope.cancel()


@asynccontextmanager
async def open_store_at(url: str) -> AsyncIterator[SessionStore]:
    store = open_store(url)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


async def test_a_restarted_process_takes_its_own_poller_lease_back_at_once(
    emulator: Emulator, fake: FakeBotAPI, tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path / 'state.db'}"
    replica_file = tmp_path / "replica-id"
    conversations = {"replica_file": str(replica_file)}
    async with running_bridge(
        emulator, fake, store=store, conversations=conversations, poller_lease=30
    ) as (runtime, adapter):
        with anyio.fail_after(10):
            await fake.wait_for(lambda: adapter.is_polling)
        identity = runtime.replica_identity
    assert replica_file.read_text().strip() == identity
    # The process "crashed": its lease is still in the store, 30 s from expiring.
    async with open_store_at(store) as shared:
        assert await shared.acquire_lock(f"telegram-poller:{fake.bot_id}", identity, 30)
    records = _Records()
    logging.getLogger("bridge_telegram").addHandler(records)
    try:
        async with running_bridge(
            emulator, fake, store=store, conversations=conversations, poller_lease=30
        ) as (restarted, adapter):
            assert restarted.replica_identity == identity
            with anyio.fail_after(10):
                await fake.wait_for(lambda: adapter.is_polling)
    finally:
        logging.getLogger("bridge_telegram").removeHandler(records)
    assert not any("standing by" in message for message in records.messages)


async def test_a_second_process_on_the_same_state_dir_gets_an_identity_of_its_own(
    emulator: Emulator, fake: FakeBotAPI, tmp_path: Path
) -> None:
    settings, _ = bridge_setup(
        emulator,
        fake,
        store=f"sqlite:///{tmp_path / 'state.db'}",
        conversations={"replica_file": str(tmp_path / "replica-id")},
    )
    async with open_runtime(settings) as runtime, open_runtime(settings) as second:
        first = runtime.replica_identity
        assert first != second.replica_identity
    async with open_runtime(settings) as again:
        assert again.replica_identity == first
