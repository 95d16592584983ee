"""Delivery guarantees: restarts, replayed updates, flood control, drafts that fail."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
from bridge_telegram.testing import FakeBotAPI, open_fake_bot_api

from bridge.emulator import Emulator
from bridge.render import to_telegram

from .conftest import ALICE, BOB, GROUP, running_bridge


async def _answered(fake: FakeBotAPI, chat_id: int, text: str) -> None:
    with anyio.fail_after(15):
        await fake.wait_for(lambda: any(m.text == text for m in fake.sent(chat_id)))


def _completed(emulator: Emulator, count: int) -> list[Any] | None:
    done = [t for t in emulator.tasks.values() if t.status == "completed"]
    return done if len(done) >= count else None


async def test_a_conversation_continues_after_a_restart_on_a_shared_sqlite_store(
    emulator: Emulator, fake: FakeBotAPI, tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path / 'state.db'}"
    async with running_bridge(emulator, fake, store=store):
        fake.queue(ALICE.says(fake, ALICE.id, "before the restart"))
        await _answered(fake, ALICE.id, "before the restart")
    async with running_bridge(emulator, fake, store=store):
        fake.queue(ALICE.says(fake, ALICE.id, "after the restart"))
        await _answered(fake, ALICE.id, "after the restart")
    first, second = emulator.invokes()
    assert first.thread_id == second.thread_id == next(iter(emulator.tasks))


async def test_a_replayed_update_starts_nothing(emulator: Emulator, fake: FakeBotAPI) -> None:
    async with running_bridge(emulator, fake):
        update = fake.queue(ALICE.says(fake, ALICE.id, "only once"))
        await _answered(fake, ALICE.id, "only once")
        fake.replay(update)
        fake.queue(ALICE.says(fake, ALICE.id, "next"))
        await _answered(fake, ALICE.id, "next")
    assert [r.json["input"]["text"] for r in emulator.invokes()] == ["only once", "next"]


async def test_flood_control_pauses_the_chat_and_loses_or_repeats_nothing(
    emulator: Emulator, fake: FakeBotAPI
) -> None:
    fake.fail_next("sendMessage", retry_after=1)
    fake.fail_next("editMessageText", retry_after=1)
    async with running_bridge(emulator, fake, default_agent="writer"):
        fake.queue(ALICE.says(fake, ALICE.id, "chunks=10 seconds=1 chars=300"))
        fake.queue(BOB.says(fake, GROUP, "@bridge_test_bot chunks=20 seconds=2 chars=600"))
        with anyio.fail_after(20):
            tasks = await fake.wait_for(lambda: _completed(emulator, 2))
            finals = {t.id: to_telegram(t.to_json()["result"])[0].text for t in tasks}
            for text in finals.values():
                await fake.wait_for(
                    lambda text=text: any(
                        m.text == text for m in fake.sent(ALICE.id) + fake.sent(GROUP)
                    )
                )
    assert fake.rate_limited == 2
    assert len(fake.sent(ALICE.id)) == 1
    assert len(fake.sent(GROUP)) == 1


async def test_a_server_without_drafts_still_gets_the_answer_by_edits(
    emulator: Emulator,
) -> None:
    async with open_fake_bot_api(supports_drafts=False) as fake:
        async with running_bridge(emulator, fake, default_agent="writer"):
            fake.queue(ALICE.says(fake, ALICE.id, "chunks=20 seconds=2 chars=600"))
            with anyio.fail_after(15):
                task = await fake.wait_for(
                    lambda: next(
                        (t for t in emulator.tasks.values() if t.status == "completed"), None
                    )
                )
            final = to_telegram(task.to_json()["result"])[0].text
            await _answered(fake, ALICE.id, final)
            fake.queue(ALICE.says(fake, ALICE.id, "chunks=5 chars=100"))
            with anyio.fail_after(15):
                await fake.wait_for(lambda: len(fake.sent(ALICE.id)) == 2)
        assert len(fake.calls_to("sendMessageDraft")) == 1  # tried once, then remembered
        assert fake.sent(ALICE.id)[0].edits >= 1


async def _two_answers(emulator: Emulator, fake: FakeBotAPI, **options: Any) -> None:
    """One streamed answer whose first draft call fails with a 500, then a second one."""
    fake.fail_next("sendMessageDraft", status=500)
    async with running_bridge(emulator, fake, default_agent="writer", **options):
        fake.queue(ALICE.says(fake, ALICE.id, "chunks=20 seconds=1 chars=600"))
        with anyio.fail_after(15):
            [task] = await fake.wait_for(lambda: _completed(emulator, 1))
        await _answered(fake, ALICE.id, to_telegram(task.to_json()["result"])[0].text)
        fake.queue(ALICE.says(fake, ALICE.id, "chunks=20 seconds=1 chars=400"))
        with anyio.fail_after(15):
            # The chat's second turn continues its thread.
            await fake.wait_for(lambda: len(task.turns) == 2 and task.status == "completed")
        await _answered(fake, ALICE.id, to_telegram(task.to_json()["result"])[0].text)


async def test_a_failed_draft_edits_that_answer_and_drafts_return_after_the_cooldown(
    emulator: Emulator, fake: FakeBotAPI
) -> None:
    await _two_answers(emulator, fake, draft_cooldown=0)
    drafts = fake.calls_to("sendMessageDraft")
    first, second = fake.sent(ALICE.id)
    # The first answer: one failed draft, then one message edited as the answer grew.
    assert drafts[0].status == 500
    assert first.edits >= 1
    # The second answer streams as drafts again and lands in its placeholder, edited once.
    assert len(drafts) > 1 and all(call.status == 200 for call in drafts[1:])
    assert second.edits == 1


async def test_within_the_cooldown_answers_are_edited_without_trying_drafts(
    emulator: Emulator, fake: FakeBotAPI
) -> None:
    await _two_answers(emulator, fake, draft_cooldown=3600)
    assert len(fake.calls_to("sendMessageDraft")) == 1
    assert all(message.edits >= 1 for message in fake.sent(ALICE.id))
