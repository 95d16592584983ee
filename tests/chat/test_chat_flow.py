"""The chat flow (`bridge.chat.ChatService`) through the line chat, over a real socket: the
queue bound, admins, commands with nothing to act on, the agent allow-list and the one
failure wording when the agents cannot be listed."""

from __future__ import annotations

import pytest

from bridge.emulator import Emulator

from .line_surface import LineAdapter
from .test_line_surface import LONG, connect, emulator, line_adapter, running, settings_for

__all__ = ["emulator"]  # the fixture, shared with the line chat's own tests

pytestmark = pytest.mark.anyio


async def test_a_full_queue_drops_the_message_and_says_so_while_one_waits(
    emulator: Emulator,
) -> None:
    adapter = line_adapter(agent="writer", max_queued=1)
    async with (
        running(settings_for(emulator), adapter),
        connect(adapter, "alice") as alice,
        connect(adapter, "bob") as bob,
        connect(adapter, "carol") as carol,
    ):
        await alice.say(LONG)
        await alice.until("text")
        await bob.say("chars=20")
        await bob.until("queued")
        await carol.say("chars=30")
        await carol.until("refused")
        await bob.until("answer")
    assert carol.texts("refused") == ["too many messages are waiting"]
    assert [r.json["input"]["text"] for r in emulator.invokes()] == [LONG, "chars=20"]


async def test_a_configured_admin_stops_anyones_turn(emulator: Emulator) -> None:
    adapter = line_adapter(agent="writer", admins=["root"])
    async with (
        running(settings_for(emulator), adapter),
        connect(adapter, "alice") as alice,
        connect(adapter, "root") as root,
    ):
        await alice.say(LONG)
        await alice.until("text")
        await root.say("/stop")
        await alice.until("failed")
    assert alice.texts("failed") == ["⏹ Stopped."]
    assert root.texts("refused") == []
    [task] = emulator.tasks.values()
    assert task.to_json()["status"] == "stopped"


async def _alone(emulator: Emulator, adapter: LineAdapter, text: str, kind: str) -> list[str]:
    """Alice says `text` in the room; returns the lines of `kind` she got back."""
    async with running(settings_for(emulator), adapter), connect(adapter, "alice") as alice:
        await alice.say(text)
        await alice.until(kind)
    return alice.texts(kind)


async def test_stop_with_nothing_running_says_so_and_invokes_nothing(emulator: Emulator) -> None:
    assert await _alone(emulator, line_adapter(), "/stop", "refused") == ["nothing to stop"]
    assert emulator.invokes() == []


async def test_an_agent_off_the_allow_list_is_refused_naming_the_allowed_ones(
    emulator: Emulator,
) -> None:
    adapter = line_adapter(agent="writer", allowed_agents=["echo"])
    refused = await _alone(emulator, adapter, "hello", "refused")
    assert refused == ["no agent 'writer' (agents: echo)"]
    assert emulator.invokes() == []


async def test_agents_that_cannot_be_listed_get_the_shared_failure_wording(
    emulator: Emulator,
) -> None:
    emulator.api_key = "rotated"  # the bridge's key is refused
    [failure] = await _alone(emulator, line_adapter(), "hello", "failed")
    assert failure.startswith("⚠️ The agent platform did not answer")
