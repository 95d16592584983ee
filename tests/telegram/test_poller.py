"""One `getUpdates` consumer per bot: replicas elect a poller through a store lock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
from bridge_telegram.testing import FakeBotAPI

from bridge.emulator import Emulator

from .conftest import ALICE, running_bridge


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
