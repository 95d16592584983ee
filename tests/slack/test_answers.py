"""Mentions, DMs and threads get streamed, threaded, canonical answers."""

from __future__ import annotations

import anyio
from bridge_slack.testing import FakeSlack

from bridge.emulator import Emulator
from tests.slack.conftest import Bridge


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
