"""Crash recovery: a turn whose bridge died is finished by the next one, in place."""

from __future__ import annotations

from pathlib import Path

import anyio
from bridge_telegram.testing import FakeBotAPI

from bridge.emulator import Emulator
from bridge.render import to_telegram

from .conftest import BOB, GROUP, running_bridge

FAST_RECOVERY = {"lock_lease": 1.0, "recovery_interval": 0.2}


async def test_a_turn_cut_off_by_a_crash_is_delivered_into_its_placeholder_after_restart(
    emulator: Emulator, fake: FakeBotAPI, tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path / 'state.db'}"
    async with running_bridge(
        emulator, fake, store=store, conversations=FAST_RECOVERY, default_agent="writer"
    ):
        fake.queue(BOB.says(fake, GROUP, "@bridge_test_bot chunks=30 seconds=3 chars=900"))
        with anyio.fail_after(10):
            # The first edit comes after the placeholder was recorded with the turn.
            await fake.wait_for(lambda: any(m.edits for m in fake.sent(GROUP)))
    # The bridge is gone mid-answer; the agent goes on upstream.
    [task] = emulator.tasks.values()
    with anyio.fail_after(10):
        await emulator.wait_for_status(task.id, "completed")
    final = to_telegram(emulator.tasks[task.id].to_json()["result"])[0].text
    async with running_bridge(
        emulator, fake, store=store, conversations=FAST_RECOVERY, default_agent="writer"
    ):
        with anyio.fail_after(15):
            await fake.wait_for(lambda: any(m.text == final for m in fake.sent(GROUP)))
    [answer] = fake.sent(GROUP)
    assert answer.text == final
    assert len(emulator.invokes()) == 1


async def test_a_long_answer_cut_off_between_parts_is_finished_without_repeating_one(
    emulator: Emulator, fake: FakeBotAPI
) -> None:
    fake.min_edit_interval = 0
    async with running_bridge(emulator, fake, conversations=FAST_RECOVERY, default_agent="writer"):
        fake.fail_next("sendMessage", status=500, after=2)  # the second overflow part
        fake.queue(BOB.says(fake, GROUP, "@bridge_test_bot chunks=3 seconds=0.3 chars=16000"))
        [task] = await _created(emulator, fake)
        with anyio.fail_after(10):
            record = await emulator.wait_for_status(task, "completed")
        parts = [piece.text for piece in to_telegram(record.to_json()["result"])]
        with anyio.fail_after(20):
            await fake.wait_for(lambda: [m.text for m in fake.sent(GROUP)] == parts)
    assert len(parts) >= 3
    assert [m.text for m in fake.sent(GROUP)] == parts
    assert [c.status for c in fake.calls_to("sendMessage")].count(500) == 1


async def _created(emulator: Emulator, fake: FakeBotAPI) -> list[str]:
    with anyio.fail_after(10):
        await fake.wait_for(lambda: emulator.tasks)
    return list(emulator.tasks)
