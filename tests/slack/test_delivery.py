"""Exactly-once answers, stop, private sign-in links, file re-hosting, fallback and rate limits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import httpx
from bridge_slack.testing import FakeSlack, event_callback, open_fake_slack

from bridge.conversations import ConversationKey
from bridge.emulator import Emulator
from tests.slack.conftest import Bridge, next_ts, serving
from tests.slack.conftest import final_texts as _final


def _mention(text: str, channel: str = "C1") -> dict[str, object]:
    return {
        "type": "app_mention",
        "channel": channel,
        "user": "U1",
        "text": f"<@UBOT> {text}",
        "ts": next_ts(),
    }


async def _task_id(bridge: Bridge, channel: str, thread_ts: str) -> str:
    key = ConversationKey("slack", f"T0001:{channel}", thread_ts)
    ref = await bridge.runtime.conversations.thread_for(key)
    assert ref is not None
    return str(ref.task_id)


async def test_redelivered_event_and_the_duplicate_message_event_start_nothing(
    bridge: Bridge, slack: FakeSlack, emulator: Emulator
) -> None:
    payload = event_callback(_mention("once"))
    await bridge.events.event(payload)
    for retry in (1, 2):
        assert (await bridge.events.event(payload, retry_num=retry)).status_code == 200
    twin = {**payload["event"], "type": "message", "channel_type": "channel"}
    await bridge.events.event(event_callback(twin))
    marker = await bridge.mention("marker")
    with anyio.fail_after(10):
        await slack.wait_for(
            lambda: (
                _final(slack, "C1", marker["ts"]) and _final(slack, "C1", payload["event"]["ts"])
            )
        )
    assert sorted(r.json["input"]["text"] for r in emulator.invokes()) == ["marker", "once"]
    assert len(slack.replies("C1", payload["event"]["ts"])) == 1


async def test_retry_landing_on_a_second_replica_does_not_answer_twice(
    emulator: Emulator, slack: FakeSlack, tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path / 'state.db'}"
    async with (
        serving(emulator, slack, store_url=store) as one,
        serving(emulator, slack, store_url=store) as two,
    ):
        payload = event_callback(_mention("shared"))
        await one.events.event(payload)
        assert (await two.events.event(payload, retry_num=1)).status_code == 200
        marker = await two.mention("marker")
        with anyio.fail_after(10):
            await slack.wait_for(
                lambda: (
                    _final(slack, "C1", marker["ts"])
                    and _final(slack, "C1", payload["event"]["ts"])
                )
            )
    assert sorted(r.json["input"]["text"] for r in emulator.invokes()) == ["marker", "shared"]


async def test_thread_continues_after_a_bridge_restart(
    emulator: Emulator, slack: FakeSlack, tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path / 'state.db'}"
    async with serving(emulator, slack, store_url=store) as before:
        first = await before.mention("before restart")
        with anyio.fail_after(10):
            await slack.wait_for(lambda: _final(slack, "C1", first["ts"]))
        task_id = await _task_id(before, "C1", first["ts"])
    async with serving(emulator, slack, store_url=store) as after:
        follow = {
            "type": "message",
            "channel": "C1",
            "channel_type": "channel",
            "user": "U1",
            "text": "after restart",
            "ts": next_ts(),
            "thread_ts": first["ts"],
        }
        await after.events.event(event_callback(follow))
        with anyio.fail_after(10):
            await slack.wait_for(lambda: len(_final(slack, "C1", first["ts"])) == 2)
    assert emulator.invokes()[-1].json["id"] == task_id


async def _start_slow_turn(bridge: Bridge, slack: FakeSlack) -> dict[str, Any]:
    """Mention the slow agent and wait until its tool step shows as the thread's status."""
    sent = await bridge.mention("agent:slow take your time")
    with anyio.fail_after(10):
        await slack.wait_for(
            lambda: any(
                "slow_tool" in str(c.args.get("status"))
                for c in slack.calls_to("assistant.threads.setStatus")
            )
        )
    return sent


async def test_stop_message_in_the_thread_stops_the_upstream_task(
    bridge: Bridge, slack: FakeSlack, emulator: Emulator
) -> None:
    sent = await _start_slow_turn(bridge, slack)
    stop = {
        "type": "message",
        "channel": "C1",
        "channel_type": "channel",
        "user": "U1",
        "text": "stop",
        "ts": next_ts(),
        "thread_ts": sent["ts"],
    }
    await bridge.events.event(event_callback(stop))
    with anyio.fail_after(10):
        await slack.wait_for(lambda: "Stopped" in "".join(_final(slack, "C1", sent["ts"])))
    assert emulator.task(await _task_id(bridge, "C1", sent["ts"])).latest.status == "stopped"


async def test_slacks_agent_session_stop_stops_the_streaming_answer(
    bridge: Bridge, slack: FakeSlack, emulator: Emulator
) -> None:
    sent = await _start_slow_turn(bridge, slack)
    stopped = {
        "type": "agent_session_stopped",
        "channel": "C1",
        "thread_ts": sent["ts"],
        "user": "U1",
    }
    await bridge.events.event(event_callback(stopped))
    with anyio.fail_after(10):
        await slack.wait_for(lambda: "Stopped" in "".join(_final(slack, "C1", sent["ts"])))
    assert emulator.task(await _task_id(bridge, "C1", sent["ts"])).latest.status == "stopped"


async def test_stop_button_on_the_updated_reply_stops_the_task(emulator: Emulator) -> None:
    async with (
        open_fake_slack(supports_streaming=False) as slack,
        serving(emulator, slack) as bridge,
    ):
        sent = await bridge.mention("agent:slow wait")
        with anyio.fail_after(10):
            placeholder = await slack.wait_for(lambda: slack.replies("C1", sent["ts"]))
            # The turn is under way upstream (its tool runs) before the click.
            await slack.wait_for(
                lambda: any(
                    "using" in str(c.args) for c in slack.calls_to("assistant.threads.setStatus")
                )
            )
        button = placeholder[0].blocks[-1]["elements"][0]
        click = {
            "type": "block_actions",
            "team": {"id": "T0001"},
            "user": {"id": "U1"},
            "channel": {"id": "C1"},
            "trigger_id": "1.2",
            "actions": [
                {
                    "action_id": button["action_id"],
                    "value": button["value"],
                    "block_id": "bridge_controls",
                    "type": "button",
                }
            ],
        }
        assert (await bridge.events.action(click)).status_code == 200
        with anyio.fail_after(10):
            await slack.wait_for(lambda: "Stopped" in placeholder[0].visible_text)
        assert [b["type"] for b in placeholder[0].blocks] == ["markdown"]


async def test_sign_in_link_goes_only_to_the_requesting_user(
    bridge: Bridge, slack: FakeSlack, emulator: Emulator
) -> None:
    sent = await bridge.mention("agent:signin fetch my mail")
    with anyio.fail_after(10):
        ephemeral = await slack.wait_for(lambda: slack.ephemerals)
    assert ephemeral[0]["user"] == "U1" and "/_emulator/login/" in ephemeral[0]["text"]
    emulator.complete_login(await _task_id(bridge, "C1", sent["ts"]))
    with anyio.fail_after(10):
        final = await slack.wait_for(lambda: _final(slack, "C1", sent["ts"]))
    assert "Signed in" in final[-1]
    public = json.dumps([c.args for c in slack.calls if c.method != "chat.postEphemeral"])
    assert "/_emulator/login/" not in public


async def test_shared_file_is_rehosted_without_leaking_the_slack_url_or_token(
    bridge: Bridge, slack: FakeSlack, emulator: Emulator
) -> None:
    shared = slack.add_file(b"quarterly numbers", "numbers.txt")
    event = {
        "type": "message",
        "subtype": "file_share",
        "channel": "D1",
        "channel_type": "im",
        "user": "U1",
        "text": "summarise this",
        "ts": next_ts(),
        "files": [shared],
    }
    await bridge.events.event(event_callback(event))
    with anyio.fail_after(10):
        await slack.wait_for(lambda: _final(slack, "D1", event["ts"]))
    invoke = emulator.invokes()[-1]
    files = invoke.json["input"]["files"]
    assert len(files) == 1 and files[0].startswith(f"{bridge.runtime.http.base_url}/files/")
    async with httpx.AsyncClient() as http:
        assert (await http.get(files[0])).content == b"quarterly numbers"
    everything_upstream = json.dumps([r.json for r in emulator.requests]) + json.dumps(
        [r.headers for r in emulator.requests]
    )
    assert slack.bot_token not in everything_upstream
    assert shared["url_private"] not in everything_upstream
    assert slack.file_downloads == [f"Bearer {slack.bot_token}"]


async def test_without_native_streaming_one_message_is_updated_to_the_canonical_answer(
    emulator: Emulator,
) -> None:
    async with (
        open_fake_slack(supports_streaming=False) as slack,
        serving(emulator, slack) as bridge,
    ):
        sent = await bridge.mention("agent:writer chars=3000 chunks=30 seconds=2")
        with anyio.fail_after(15):
            await slack.wait_for(
                lambda: any(
                    "\n\n" in m.visible_text
                    and len(slack.calls_to("chat.update")) > 1
                    and m.blocks
                    and len(m.blocks) == 1
                    for m in slack.replies("C1", sent["ts"])
                )
            )
        result = emulator.task(await _task_id(bridge, "C1", sent["ts"])).latest.result
    replies = slack.replies("C1", sent["ts"])
    assert len(replies) == 1 and replies[0].visible_text == result
    assert len(slack.calls_to("chat.postMessage")) == 1
    assert not slack.rate_limited


async def test_rate_limits_pause_delivery_and_lose_no_text(emulator: Emulator) -> None:
    async with open_fake_slack() as slack, serving(emulator, slack) as bridge:
        slack.fail("chat.appendStream", status=429, retry_after=1)
        slack.fail("chat.stopStream", status=200, error="ratelimited", retry_after=1)
        sent = await bridge.mention("agent:writer chars=2000 chunks=20 seconds=1.5")
        with anyio.fail_after(20):
            final = await slack.wait_for(lambda: _final(slack, "C1", sent["ts"]))
        result = emulator.task(await _task_id(bridge, "C1", sent["ts"])).latest.result
    assert final == [result]
    assert {c.method for c in slack.rate_limited} == {"chat.appendStream", "chat.stopStream"}
    assert bridge.runtime.scheduler.stats.rate_limited >= 2


async def _two_answers(emulator: Emulator, **options: Any) -> FakeSlack:
    """One answer whose chat.startStream fails with a 500, then an answer in another thread."""
    async with open_fake_slack() as slack, serving(emulator, slack, **options) as bridge:
        slack.fail("chat.startStream", status=500, error="internal_error")
        for text in ("first chars=600 chunks=20 seconds=1", "second chars=400 chunks=10"):
            sent = await bridge.mention(f"agent:writer {text}")
            with anyio.fail_after(15):
                await slack.wait_for(lambda sent=sent: _final(slack, "C1", sent["ts"]))
    return slack


async def test_a_failed_stream_start_updates_that_answer_and_streams_return_after_the_cooldown(
    emulator: Emulator,
) -> None:
    slack = await _two_answers(emulator, stream_cooldown=0)
    starts = slack.calls_to("chat.startStream")
    assert [call.status for call in starts] == [500, 200]
    # The first answer was one posted message brought up to date with updates.
    assert len(slack.calls_to("chat.postMessage")) == 1
    assert slack.calls_to("chat.update")


async def test_within_the_cooldown_answers_are_updated_without_trying_to_stream(
    emulator: Emulator,
) -> None:
    slack = await _two_answers(emulator, stream_cooldown=3600)
    assert len(slack.calls_to("chat.startStream")) == 1
    assert len(slack.calls_to("chat.postMessage")) == 2
