"""One Slack user cannot act on another user's turn, choose agents the channel does not allow,
post through the slash command before the allow-lists and their bucket, flood one
conversation's queue, or ping anyone through text the bot echoes. Over real sockets: the fake
Slack Web API, the emulator and `bridge serve`."""

from __future__ import annotations

from typing import Any

import anyio
from bridge_slack.testing import FakeSlack, event_callback, open_fake_slack

from bridge.conversations import ConversationKey
from bridge.emulator import Emulator
from tests.slack.conftest import Bridge, next_ts, serving

NOT_YOURS = "Only the person who asked, or an admin"


def _reply(thread_ts: str, user: str, text: str, channel: str = "C1") -> dict[str, Any]:
    return {
        "type": "message",
        "channel": channel,
        "channel_type": "channel",
        "user": user,
        "text": text,
        "ts": next_ts(),
        "thread_ts": thread_ts,
    }


def _notes(slack: FakeSlack, user: str, text: str) -> list[dict[str, Any]]:
    return [e for e in slack.ephemerals if e["user"] == user and text in e["text"]]


async def _slow_turn(bridge: Bridge, slack: FakeSlack, channel: str = "C1") -> str:
    """U1 asks the slow agent; returns the thread once its tool step shows."""
    sent = await bridge.mention("agent:slow take your time", channel=channel)
    with anyio.fail_after(10):
        await slack.wait_for(
            lambda: any(
                "slow_tool" in str(c.args.get("status"))
                for c in slack.calls_to("assistant.threads.setStatus")
            )
        )
    return str(sent["ts"])


async def _status(bridge: Bridge, emulator: Emulator, thread_ts: str) -> str:
    ref = await bridge.runtime.conversations.thread_for(
        ConversationKey("slack", "T0001:C1", thread_ts)
    )
    assert ref is not None
    return str(emulator.task(ref.task_id).latest.status)


async def test_another_member_cannot_stop_switch_or_reset_a_turn_but_admins_can(
    emulator: Emulator, slack: FakeSlack
) -> None:
    slack.add_user("U2", "Mallory Member", "mallory@example.com")
    slack.add_user("U3", "Olga Owner", "olga@example.com", is_owner=True)
    slack.add_user("U4", "Carl Configured", "carl@example.com")
    async with serving(emulator, slack, admins=["U4"]) as bridge:
        thread = await _slow_turn(bridge, slack)
        key = ConversationKey("slack", "T0001:C1", thread)
        for text in ("stop", "agent:writer take over", "reset"):
            await bridge.events.event(event_callback(_reply(thread, "U2", text)))
        with anyio.fail_after(10):
            await slack.wait_for(lambda: len(_notes(slack, "U2", NOT_YOURS)) == 3)
        assert await _status(bridge, emulator, thread) != "stopped"
        assert await bridge.runtime.conversations.agent_for(key) == emulator.agent("slow").id
        assert await bridge.runtime.conversations.requester(key) == "T0001:U1"
        # A workspace owner (users.info is_owner) stops it; a configured admin resets it.
        await bridge.events.event(event_callback(_reply(thread, "U3", "stop")))
        with anyio.fail_after(10):
            await slack.wait_for(lambda: "Stopped" in "".join(_final(slack, thread)))
        assert await _status(bridge, emulator, thread) == "stopped"
        await bridge.events.event(event_callback(_reply(thread, "U4", "reset")))
        with anyio.fail_after(10):
            await slack.wait_for(lambda: _notes(slack, "U4", "starts a new conversation"))
        assert await bridge.runtime.conversations.thread_for(key) is None
    assert [r.json["input"]["text"] for r in emulator.invokes()] == ["take your time"]


def _final(slack: FakeSlack, thread_ts: str) -> list[str]:
    return [m.visible_text for m in slack.replies("C1", thread_ts) if not m.streaming]


def _click(value: str, *, user: str, team: str = "T0001", channel: str = "C1") -> dict[str, Any]:
    return {
        "type": "block_actions",
        "team": {"id": team},
        "user": {"id": user},
        "channel": {"id": channel},
        "trigger_id": "1.2",
        "actions": [{"action_id": "bridge_stop", "value": value, "block_id": "bridge_controls"}],
    }


async def test_a_stop_click_by_another_user_or_claiming_another_place_stops_nothing(
    emulator: Emulator,
) -> None:
    async with (
        open_fake_slack(supports_streaming=False) as slack,
        serving(emulator, slack) as bridge,
    ):
        slack.add_user("U2", "Mallory Member", "mallory@example.com")
        thread = await _slow_turn(bridge, slack)
        placeholder = slack.replies("C1", thread)[0]
        value = placeholder.blocks[-1]["elements"][0]["value"]
        assert "slack|" not in value  # no conversation key to forge
        forged = [
            _click(value, user="U2"),
            _click(value, user="U2", team="T9", channel="C9"),
            _click(value, user="U1", team="T9", channel="C9"),
        ]
        for click in forged:
            assert (await bridge.events.action(click)).status_code == 200
        with anyio.fail_after(10):
            await slack.wait_for(
                lambda: len([e for e in slack.ephemerals if NOT_YOURS in e["text"]]) == 3
            )
        assert await _status(bridge, emulator, thread) != "stopped"
        assert (await bridge.events.action(_click(value, user="U1"))).status_code == 200
        with anyio.fail_after(10):
            await slack.wait_for(lambda: "Stopped" in placeholder.visible_text)
        assert await _status(bridge, emulator, thread) == "stopped"


async def test_channels_offer_and_list_only_their_allowed_agents(
    emulator: Emulator, slack: FakeSlack
) -> None:
    options = {
        "allowed_agents": ["echo", "researcher", "writer"],
        "channels": {"C2": {"agent": "echo", "allowed_agents": ["echo", "researcher"]}},
    }
    async with serving(emulator, slack, **options) as bridge:
        await bridge.mention("agent:writer not here", channel="C2")
        await bridge.mention("agent:slow not anywhere", channel="C1")
        with anyio.fail_after(10):
            await slack.wait_for(lambda: len(_notes(slack, "U1", "There is no agent")) == 2)
        allowed = await bridge.mention("agent:researcher otters", channel="C2")
        routed = await bridge.mention("plain question", channel="C2")
        with anyio.fail_after(10):
            await slack.wait_for(
                lambda: all(
                    [m for m in slack.replies("C2", str(sent["ts"])) if not m.streaming]
                    for sent in (allowed, routed)
                )
            )
    in_c2, in_c1 = (n["text"] for n in _notes(slack, "U1", "There is no agent"))
    assert "`echo`" in in_c2 and "`researcher`" in in_c2
    assert "writer" not in in_c2.split("here.")[1] and "slow" not in in_c2
    assert "`writer`" in in_c1 and "slow" not in in_c1.split("here.")[1]
    paths = {r.json["input"]["text"]: r.path for r in emulator.invokes()}
    assert set(paths) == {"otters", "plain question"}
    assert emulator.agent("researcher").id in paths["otters"]
    assert emulator.agent("echo").id in paths["plain question"]


def _command(user: str, text: str, n: int) -> dict[str, str]:
    return {
        "command": "/agent",
        "text": text,
        "team_id": "T0001",
        "channel_id": "C1",
        "user_id": user,
        "trigger_id": f"t.{user}.{n}",
        "response_url": "http://127.0.0.1:9/unused",
    }


async def test_slash_commands_check_allow_lists_and_the_bucket_before_posting_and_escape_echo(
    emulator: Emulator, slack: FakeSlack
) -> None:
    slack.add_user("U5", "Sam Sentinel", "sam@example.com")
    options = {"allowed_users": ["U1", "U5"], "user_rate_limit": 3, "user_rate_window": 3600}
    async with serving(emulator, slack, **options) as bridge:
        assert (await bridge.events.command(_command("U7", "<!channel> hi", 0))).status_code == 200
        pings = "<!channel> <!here> <@U0999> & <b>"
        for n in range(40):
            text = pings if n == 0 else f"question {n}"
            assert (await bridge.events.command(_command("U1", text, n))).status_code == 200
        # Every command above was decided before this one, and posts go out in order.
        assert (await bridge.events.command(_command("U5", "sentinel", 0))).status_code == 200
        with anyio.fail_after(30):
            await slack.wait_for(
                lambda: [m for m in slack.messages if m.text == "<@U5> asked: sentinel"]
            )
            await slack.wait_for(lambda: _notes(slack, "U1", "faster than I can"))
    roots = [m for m in slack.messages if m.thread_ts is None and "<@U5>" not in m.text]
    assert len(roots) == 3
    assert all(root.text.startswith("<@U1> asked: ") for root in roots)
    assert roots[0].text == (
        "<@U1> asked: &lt;!channel&gt; &lt;!here&gt; &lt;@U0999&gt; &amp; &lt;b&gt;"
    )
    assert len(_notes(slack, "U1", "faster than I can")) == 1
    assert not [e for e in slack.ephemerals if e["user"] == "U7"]
    asked = sorted(r.json["input"]["text"] for r in emulator.invokes())
    assert len(asked) <= 4 and "hi" not in asked


async def test_a_full_conversation_queue_drops_the_message_and_says_so(
    emulator: Emulator, slack: FakeSlack
) -> None:
    async with serving(emulator, slack, max_queued=1) as bridge:
        thread = await _slow_turn(bridge, slack)
        for text in ("one", "two", "three"):
            await bridge.events.event(event_callback(_reply(thread, "U1", text)))
        with anyio.fail_after(10):
            await slack.wait_for(lambda: len(_notes(slack, "U1", "")) == 3)
        assert len(_notes(slack, "U1", "yours is next")) == 1
        assert len(_notes(slack, "U1", "yours was not sent")) == 2
        assert (
            bridge.runtime.conversations.waiting(ConversationKey("slack", "T0001:C1", thread)) == 1
        )
    assert [r.json["input"]["text"] for r in emulator.invokes()] == ["take your time"]
