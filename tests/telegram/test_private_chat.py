"""Private chats: streamed drafts, then the final message; identity and source upstream."""

from __future__ import annotations

import anyio
from bridge_telegram._outbound import PLACEHOLDER
from bridge_telegram.testing import FakeBotAPI

from bridge.emulator import Emulator
from bridge.render import to_telegram

from .conftest import ALICE, running_bridge


async def test_private_chat_streams_a_draft_then_sends_the_final_answer(
    emulator: Emulator, fake: FakeBotAPI
) -> None:
    async with running_bridge(emulator, fake, default_agent="writer"):
        fake.queue(ALICE.says(fake, ALICE.id, "chunks=20 seconds=2 chars=600"))
        with anyio.fail_after(15):
            await fake.wait_for(lambda: any(m.text != PLACEHOLDER for m in fake.sent(ALICE.id)))
    final = fake.sent(ALICE.id)
    assert len(final) == 1
    drafts = fake.calls_to("sendMessageDraft")
    assert drafts, "no draft was streamed"
    # The placeholder is sent first; the final answer is its one edit, after every draft.
    [edit] = fake.calls_to("editMessageText")
    assert all(d.at <= edit.at for d in drafts)
    task = next(iter(emulator.tasks.values()))
    assert final[0].text == to_telegram(task.to_json()["result"])[0].text
    assert fake.rate_limited == 0


async def test_every_invoke_carries_the_telegram_source_and_the_user(
    emulator: Emulator, fake: FakeBotAPI
) -> None:
    async with running_bridge(emulator, fake):
        fake.queue(ALICE.says(fake, ALICE.id, "hello there"))
        with anyio.fail_after(10):
            await fake.wait_for(lambda: any(m.text == "hello there" for m in fake.sent(ALICE.id)))
    assert fake.sent(ALICE.id)[0].text == "hello there"
    [invoke] = emulator.invokes()
    body = invoke.json
    assert body["source"] == "telegram"
    user = body["input"]["user"]
    assert user["email"] == "42@telegram.invalid"
    assert user["id"] == "telegram:42"
    assert user["first_name"] == "Alice"
