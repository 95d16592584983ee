"""The adapter keeps the core's adapter contract (bridge.testing.check_adapter_contract)."""

from __future__ import annotations

import anyio
from bridge_telegram.testing import FakeBotAPI

from bridge.emulator import Emulator
from bridge.runtime import Runtime
from bridge.testing import check_adapter_contract

from .conftest import ALICE, bridge_setup


async def test_the_adapter_keeps_the_adapter_contract_and_renders_upstream_failures(
    emulator: Emulator, fake: FakeBotAPI
) -> None:
    settings, adapter = bridge_setup(emulator, fake)

    async def trigger(runtime: Runtime) -> None:
        fake.queue(ALICE.says(fake, ALICE.id, "are you up?"))
        with anyio.fail_after(30):
            await fake.wait_for(lambda: any("⚠️" in m.text for m in fake.sent(ALICE.id)))

    await check_adapter_contract(adapter, settings, emulator=emulator, trigger=trigger)
