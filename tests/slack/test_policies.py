"""Approval prompts, long answers, allow-lists and the per-user rate limit."""

from __future__ import annotations

import anyio
from bridge_slack.testing import FakeSlack, event_callback

from bridge.emulator import Emulator
from tests.slack.conftest import final_texts as _final
from tests.slack.conftest import next_ts, serving


def _words(text: str) -> list[str]:
    return [word for word in text.split() if not word.startswith("```")]


async def test_paused_task_shows_its_approval_request_in_the_thread(
    emulator: Emulator, slack: FakeSlack
) -> None:
    async with serving(emulator, slack) as bridge:
        sent = await bridge.mention("agent:approver delete the logs")
        with anyio.fail_after(10):
            prompt = await slack.wait_for(lambda: _final(slack, "C1", sent["ts"]))
        assert "Approval required" in prompt[0] and "delete the logs" in prompt[0]
        task_id = next(iter(emulator.tasks))
        emulator.resume(task_id, approved=True)
        with anyio.fail_after(10):
            await slack.wait_for(lambda: any("Done" in t for t in _final(slack, "C1", sent["ts"])))


async def test_answer_beyond_one_message_is_split_without_losing_text(
    emulator: Emulator, slack: FakeSlack
) -> None:
    async with serving(emulator, slack) as bridge:
        sent = await bridge.mention("agent:writer chars=30000 chunks=10")
        with anyio.fail_after(20):
            await slack.wait_for(
                lambda: (
                    len(_final(slack, "C1", sent["ts"])) == 3
                    and not slack.replies("C1", sent["ts"])[0].streaming
                    and slack.replies("C1", sent["ts"])[0].edits
                )
            )
        result = next(iter(emulator.tasks.values())).latest.result
    parts = _final(slack, "C1", sent["ts"])
    assert all(len(part) <= 12_000 for part in parts)
    # split_markdown closes and reopens a code fence cut between parts; nothing else changes.
    assert _words("\n".join(parts)) == _words(result)


async def test_answer_beyond_the_part_limit_is_attached_as_a_file(
    emulator: Emulator, slack: FakeSlack
) -> None:
    async with serving(emulator, slack, max_message_parts=1) as bridge:
        sent = await bridge.mention("agent:writer chars=15000 chunks=3")
        with anyio.fail_after(20):
            await slack.wait_for(lambda: any(m.files for m in slack.messages))
        result = next(iter(emulator.tasks.values())).latest.result
    attached = next(m for m in slack.messages if m.files)
    assert attached.thread_ts == sent["ts"]
    assert slack.files[attached.files[0]][0].decode() == result


async def test_users_off_the_allow_list_and_over_the_rate_limit_get_no_turn(
    emulator: Emulator, slack: FakeSlack
) -> None:
    async with serving(emulator, slack, allowed_users=["U1"], user_rate_limit=1) as bridge:
        await bridge.mention("from a stranger", user="U7")
        first = await bridge.mention("first")
        second = {
            "type": "message",
            "channel": "D1",
            "channel_type": "im",
            "user": "U1",
            "text": "too fast",
            "ts": next_ts(),
        }
        await bridge.events.event(event_callback(second))
        with anyio.fail_after(10):
            await slack.wait_for(lambda: _final(slack, "C1", first["ts"]) and slack.ephemerals)
    assert [r.json["input"]["text"] for r in emulator.invokes()] == ["first"]
    assert slack.ephemerals[0]["user"] == "U1" and slack.ephemerals[0]["channel"] == "D1"
