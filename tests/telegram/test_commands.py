"""Commands: /new, /agent, /stop, /help, and their registration with setMyCommands."""

from __future__ import annotations

import anyio
from bridge_telegram.testing import FakeBotAPI

from bridge.emulator import Emulator

from .conftest import ALICE, running_bridge


async def _ask(fake: FakeBotAPI, text: str, expect: str) -> None:
    fake.queue(ALICE.says(fake, ALICE.id, text))
    with anyio.fail_after(10):
        await fake.wait_for(lambda: any(expect in m.text for m in fake.sent(ALICE.id)))


async def test_commands_are_registered_with_set_my_commands(
    emulator: Emulator, fake: FakeBotAPI
) -> None:
    async with running_bridge(emulator, fake):
        with anyio.fail_after(10):
            await fake.wait_for(lambda: fake.commands)
    assert {c["command"] for c in fake.commands} == {"start", "new", "agent", "stop", "help"}


async def test_new_starts_a_fresh_conversation(emulator: Emulator, fake: FakeBotAPI) -> None:
    async with running_bridge(emulator, fake):
        await _ask(fake, "one", "one")
        await _ask(fake, "two", "two")
        await _ask(fake, "/new", "Fresh conversation")
        await _ask(fake, "three", "three")
    first, second, third = emulator.invokes()
    assert second.thread_id == first.thread_id
    assert third.thread_id not in (None, first.thread_id)
    assert len(emulator.tasks) == 2


async def test_agent_lists_agents_and_switches_to_the_named_one(
    emulator: Emulator, fake: FakeBotAPI
) -> None:
    async with running_bridge(emulator, fake):
        await _ask(fake, "/agent", "researcher")
        listing = next(m.text for m in fake.sent(ALICE.id) if "researcher" in m.text)
        assert "echo (current)" in listing
        await _ask(fake, "/agent researcher", "Now talking to")
        await _ask(fake, "quantum dots", "Both sources agree")
        await _ask(fake, "/agent nobody", "No agent named")
    [invoke] = emulator.invokes()
    assert invoke.agent_id == emulator.agent("researcher").id


async def test_stop_stops_the_running_answer(emulator: Emulator, fake: FakeBotAPI) -> None:
    async with running_bridge(emulator, fake, default_agent="slow"):
        fake.queue(ALICE.says(fake, ALICE.id, "take your time"))
        with anyio.fail_after(10):
            task = await fake.wait_for(lambda: next(iter(emulator.tasks.values()), None))
            await emulator.wait_for_status(task.id, "executing")
        await _ask(fake, "/stop", "Stopped")
    assert emulator.tasks[task.id].status == "stopped"


async def test_stop_with_nothing_running_says_so(emulator: Emulator, fake: FakeBotAPI) -> None:
    async with running_bridge(emulator, fake):
        await _ask(fake, "/stop", "Nothing to stop")


async def test_help_explains_the_commands(emulator: Emulator, fake: FakeBotAPI) -> None:
    async with running_bridge(emulator, fake):
        await _ask(fake, "/help", "/new")
        await _ask(fake, "/start", "/agent")
    assert not emulator.invokes()
