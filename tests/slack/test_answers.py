"""Mentions, DMs and threads get streamed, threaded, canonical answers."""

from __future__ import annotations

import time

import anyio
from bridge_slack.testing import FakeSlack, event_callback

from bridge.conversations import ConversationKey
from bridge.emulator import AgentSpec, Emulator, TurnContext
from bridge.testing import open_emulator
from tests.slack.conftest import Bridge, next_ts, serving
from tests.slack.conftest import final_texts as _final


async def test_mention_gets_a_threaded_streamed_answer(
    bridge: Bridge, slack: FakeSlack, emulator: Emulator
) -> None:
    sent = await bridge.mention("hello there friend")
    with anyio.fail_after(10):
        answer = await slack.wait_for(
            lambda: [m for m in slack.replies("C1", sent["ts"]) if not m.streaming]
        )
    assert answer[0].visible_text == "hello there friend"
    assert slack.calls_to("chat.startStream")
    assert slack.calls_to("chat.stopStream")
    assert not slack.calls_to("chat.postMessage")
    invoke = emulator.invokes()[-1].json
    assert invoke["source"] == "slack"
    assert invoke["input"]["user"]["email"] == "ada@example.com"


async def test_thread_follow_up_without_mention_continues_the_same_upstream_task(
    bridge: Bridge, slack: FakeSlack, emulator: Emulator
) -> None:
    first = await bridge.mention("one")
    with anyio.fail_after(10):
        await slack.wait_for(lambda: _final(slack, "C1", first["ts"]))
    follow = _reply_in_thread(first["ts"], "two")
    assert (await bridge.events.event(event_callback(follow))).status_code == 200
    with anyio.fail_after(10):
        await slack.wait_for(lambda: len(_final(slack, "C1", first["ts"])) == 2)
    first_invoke, second_invoke = emulator.invokes()[-2:]
    task_id = (
        await bridge.runtime.conversations.thread_for(
            ConversationKey("slack", "T0001:C1", first["ts"])
        )
    ).task_id
    # The first turn goes under the id the bridge chose for the new thread.
    assert first_invoke.json["id"] == task_id
    assert second_invoke.json["id"] == task_id


async def test_plain_channel_message_outside_a_bot_thread_is_ignored(
    bridge: Bridge, slack: FakeSlack, emulator: Emulator
) -> None:
    plain = {
        "type": "message",
        "channel": "C1",
        "channel_type": "channel",
        "user": "U1",
        "text": "just chatting",
        "ts": next_ts(),
        "thread_ts": "1600000000.000001",
    }
    await bridge.events.event(event_callback(plain))
    sent = await bridge.mention("marker")
    with anyio.fail_after(10):
        await slack.wait_for(lambda: _final(slack, "C1", sent["ts"]))
    assert [r.json["input"]["text"] for r in emulator.invokes()] == ["marker"]


async def test_without_follow_threads_a_reply_in_the_bots_thread_needs_a_mention(
    emulator: Emulator, slack: FakeSlack
) -> None:
    async with serving(emulator, slack, follow_threads=False) as bridge:
        first = await bridge.mention("one")
        with anyio.fail_after(10):
            await slack.wait_for(lambda: _final(slack, "C1", first["ts"]))
        reply = _reply_in_thread(first["ts"], "two")
        await bridge.events.event(event_callback(reply))
        marker = await bridge.mention("marker")
        with anyio.fail_after(10):
            await slack.wait_for(lambda: _final(slack, "C1", marker["ts"]))
    assert [r.json["input"]["text"] for r in emulator.invokes()] == ["one", "marker"]


async def test_bots_own_and_other_bots_messages_are_ignored(
    bridge: Bridge, slack: FakeSlack, emulator: Emulator
) -> None:
    own = {
        "type": "message",
        "channel": "D1",
        "channel_type": "im",
        "user": "UBOT",
        "text": "mine",
        "ts": next_ts(),
    }
    other = {
        "type": "message",
        "channel": "D1",
        "channel_type": "im",
        "user": "U9",
        "bot_id": "BOTHER",
        "subtype": "bot_message",
        "text": "theirs",
        "ts": next_ts(),
    }
    for event in (own, other):
        await bridge.events.event(event_callback(event))
    dm = {
        "type": "message",
        "channel": "D1",
        "channel_type": "im",
        "user": "U1",
        "text": "direct",
        "ts": next_ts(),
    }
    await bridge.events.event(event_callback(dm))
    with anyio.fail_after(10):
        await slack.wait_for(lambda: _final(slack, "D1", dm["ts"]))
    assert [r.json["input"]["text"] for r in emulator.invokes()] == ["direct"]


async def test_explicit_agent_choice_and_channel_route_pick_the_agent(
    emulator: Emulator, slack: FakeSlack
) -> None:
    async with serving(emulator, slack, channels={"C2": "researcher"}) as bridge:
        routed = await bridge.mention("tides", channel="C2")
        chosen = await bridge.mention("agent:writer chars=50 chunks=2", channel="C2")
        with anyio.fail_after(10):
            await slack.wait_for(
                lambda: _final(slack, "C2", routed["ts"]) and _final(slack, "C2", chosen["ts"])
            )
    agents = {r.json["input"]["text"]: r.path for r in emulator.invokes()}
    assert emulator.agent("researcher").id in agents["tides"]
    assert emulator.agent("writer").id in agents["chars=50 chunks=2"]
    assert "Here is what I found about tides" in _final(slack, "C2", routed["ts"])[0]


async def test_forged_and_stale_requests_get_401(bridge: Bridge, slack: FakeSlack) -> None:
    event = event_callback(
        {
            "type": "app_mention",
            "channel": "C1",
            "user": "U1",
            "text": "<@UBOT> hi",
            "ts": next_ts(),
        }
    )
    forged = await bridge.events.event(event, secret="not-the-secret")
    stale = await bridge.events.event(event, timestamp=int(time.time()) - 600)
    assert (forged.status_code, stale.status_code) == (401, 401)
    assert not slack.calls_to("chat.startStream")


async def test_failed_turn_says_so_plainly(bridge: Bridge, slack: FakeSlack) -> None:
    sent = await bridge.mention("agent:failing please")
    with anyio.fail_after(10):
        final = await slack.wait_for(lambda: _final(slack, "C1", sent["ts"]))
    assert "failed" in final[-1]


async def _streams_without_a_result(ctx: TurnContext) -> None:
    ctx.chunk("streamed, ")
    ctx.chunk("never stored")
    ctx.result = ""


async def test_a_finished_task_without_a_result_keeps_the_streamed_answer(
    slack: FakeSlack,
) -> None:
    quiet = AgentSpec("quiet", script=_streams_without_a_result)
    async with (
        open_emulator(api_key="test-key", extra_agents=[quiet]) as emulator,
        serving(emulator, slack) as bridge,
    ):
        sent = await bridge.mention("agent:quiet hello")
        with anyio.fail_after(10):
            final = await slack.wait_for(lambda: _final(slack, "C1", sent["ts"]))
    assert final == ["streamed, never stored"]


def _reply_in_thread(thread_ts: str, text: str) -> dict[str, str]:
    """U1's message in C1's thread `thread_ts`, without a mention."""
    return {
        "type": "message",
        "channel": "C1",
        "channel_type": "channel",
        "user": "U1",
        "text": text,
        "ts": next_ts(),
        "thread_ts": thread_ts,
    }
