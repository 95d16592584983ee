"""Groups and forum topics: who the bot answers, one edited message, topics kept."""

from __future__ import annotations

import anyio
from bridge_telegram.testing import FakeBotAPI

from bridge.emulator import Emulator
from bridge.render import to_telegram

from .conftest import ALICE, BOB, FORUM, GROUP, running_bridge


def _final_text(emulator: Emulator, task_id: str) -> str:
    result = emulator.tasks[task_id].to_json()["result"]
    return to_telegram(result)[0].text


async def test_group_answer_is_one_message_edited_within_the_chat_limits(
    emulator: Emulator, fake: FakeBotAPI
) -> None:
    async with running_bridge(emulator, fake, default_agent="writer"):
        asked = fake.queue(BOB.says(fake, GROUP, "@bridge_test_bot chunks=40 seconds=3 chars=900"))
        with anyio.fail_after(20):
            task = await fake.wait_for(
                lambda: next((t for t in emulator.tasks.values() if t.status == "completed"), None)
            )
            final = _final_text(emulator, task.id)
            await fake.wait_for(lambda: any(m.text == final for m in fake.sent(GROUP)))
    [answer] = fake.sent(GROUP)
    assert answer.reply_to == asked["message"]["message_id"]
    assert answer.edits >= 1, "the answer was not streamed"
    assert len(fake.calls_to("editMessageText")) < 40
    assert fake.rate_limited == 0
    assert fake.calls_to("sendChatAction")
    assert not fake.calls_to("sendMessageDraft")


async def test_group_messages_not_addressed_to_the_bot_are_ignored(
    emulator: Emulator, fake: FakeBotAPI
) -> None:
    async with running_bridge(emulator, fake):
        fake.queue(BOB.says(fake, GROUP, "just chatting among humans"))
        fake.queue(BOB.says(fake, GROUP, "@bridge_test_bot are you there?"))
        with anyio.fail_after(10):
            await fake.wait_for(lambda: any("are you there" in m.text for m in fake.sent(GROUP)))
    assert [r.json["input"]["text"] for r in emulator.invokes()] == ["are you there?"]


async def test_a_reply_to_the_bot_continues_the_group_conversation(
    emulator: Emulator, fake: FakeBotAPI
) -> None:
    async with running_bridge(emulator, fake):
        fake.queue(BOB.says(fake, GROUP, "@bridge_test_bot first"))
        with anyio.fail_after(10):
            await fake.wait_for(lambda: any(m.text == "first" for m in fake.sent(GROUP)))
            answer = fake.sent(GROUP)[0]
            fake.queue(ALICE.says(fake, GROUP, "second", reply_to=answer.message_id))
            await fake.wait_for(lambda: any(m.text == "second" for m in fake.sent(GROUP)))
    first, second = emulator.invokes()
    assert first.thread_id == second.thread_id == next(iter(emulator.tasks))


async def test_forum_topic_answers_stay_in_the_topic_and_topics_are_separate_conversations(
    emulator: Emulator, fake: FakeBotAPI
) -> None:
    async with running_bridge(emulator, fake):
        fake.queue(BOB.says(fake, FORUM, "@bridge_test_bot in seven", topic=7))
        with anyio.fail_after(10):
            await fake.wait_for(lambda: any(m.text == "in seven" for m in fake.sent(FORUM)))
            fake.queue(BOB.says(fake, FORUM, "@bridge_test_bot in nine", topic=9))
            await fake.wait_for(lambda: any(m.text == "in nine" for m in fake.sent(FORUM)))
    seven, nine = fake.sent(FORUM)
    assert (seven.thread_id, nine.thread_id) == (7, 9)
    assert [r.thread_id for r in emulator.invokes()] == list(emulator.tasks)
    assert len(emulator.tasks) == 2


async def test_reply_threads_are_separate_conversations_in_thread_mode(
    emulator: Emulator, fake: FakeBotAPI
) -> None:
    async with running_bridge(emulator, fake, group_conversation="thread"):
        fake.queue(BOB.says(fake, GROUP, "@bridge_test_bot one"))
        with anyio.fail_after(10):
            await fake.wait_for(lambda: any(m.text == "one" for m in fake.sent(GROUP)))
            fake.queue(BOB.says(fake, GROUP, "@bridge_test_bot two"))
            await fake.wait_for(lambda: any(m.text == "two" for m in fake.sent(GROUP)))
            one = next(m for m in fake.sent(GROUP) if m.text == "one")
            fake.queue(BOB.says(fake, GROUP, "three", reply_to=one.message_id))
            await fake.wait_for(lambda: any(m.text == "three" for m in fake.sent(GROUP)))
    first, second, third = emulator.invokes()
    tasks = list(emulator.tasks)
    assert [first.thread_id, second.thread_id] == tasks
    assert third.thread_id == tasks[0], "the reply did not continue the thread it replied to"


async def test_a_chat_route_chooses_the_agent_of_that_chat(
    emulator: Emulator, fake: FakeBotAPI
) -> None:
    routes = {str(GROUP): {"agent": "researcher"}}
    async with running_bridge(emulator, fake, routes=routes):
        fake.queue(BOB.says(fake, GROUP, "@bridge_test_bot tides"))
        fake.queue(ALICE.says(fake, ALICE.id, "private"))
        with anyio.fail_after(10):
            await fake.wait_for(lambda: any("sources agree" in m.text for m in fake.sent(GROUP)))
            await fake.wait_for(lambda: any(m.text == "private" for m in fake.sent(ALICE.id)))
    agents = {r.json["input"]["text"]: r.agent_id for r in emulator.invokes()}
    assert agents == {
        "tides": emulator.agent("researcher").id,
        "private": emulator.agent("echo").id,
    }
