"""Agent output cannot ping or phish: an agent echoing Slack's broadcast, user-group and user
mentions reaches no send path unescaped (streamed, updated, long answers); on Telegram only
web and mail links become links."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from bridge_slack.testing import FakeSlack, event_callback, open_fake_slack
from bridge_telegram.testing import FakeBotAPI, FakeUser, open_fake_bot_api

from bridge.emulator import Emulator
from tests.security.conftest import serving
from tests.telegram.conftest import running_bridge

PINGS = "<!channel> <!here> <!everyone> <!subteam^S0123|@oncall> <@U0999> <@W0999|boss>"
FORBIDDEN = ("<!channel", "<!here", "<!everyone", "<!subteam", "<@U0999", "<@W0999")
_SENDS = {
    "chat.postMessage",
    "chat.update",
    "chat.startStream",
    "chat.appendStream",
    "chat.stopStream",
    "chat.postEphemeral",
}


def _sent(slack: FakeSlack) -> str:
    return json.dumps([c.args for c in slack.calls if c.method in _SENDS], ensure_ascii=False)


async def _ask(edge: Any, slack: FakeSlack, text: str, ts: str, last: str) -> list[str]:
    """Mention the bot with `text`; the thread's finished replies once one ends with `last`."""
    event = {"type": "app_mention", "channel": "C1", "user": "U1", "text": text, "ts": ts}
    assert (await edge.events.event(event_callback(event))).status_code == 200

    def finished() -> list[str]:
        shown = [m.visible_text for m in slack.replies("C1", ts) if not m.streaming]
        return shown if shown and shown[-1].endswith(last) else []

    with anyio.fail_after(30):
        return list(await slack.wait_for(finished))


@pytest.mark.parametrize("streaming", [True, False])
async def test_mentions_in_agent_output_are_escaped_on_every_slack_send_path(
    emulator: Emulator, telegram: FakeBotAPI, streaming: bool
) -> None:
    long = "\n\n".join(f"part {i} {PINGS} & <b>" + " filler" * 400 for i in range(12))
    long += "\n\nthe end"
    async with (
        open_fake_slack(supports_streaming=streaming) as slack,
        serving(emulator, slack, telegram, slack_options={"max_message_parts": 10}) as edge,
    ):
        short = await _ask(edge, slack, f"{PINGS} a & b <i>", "1700000300.000001", "<i>")
        parts = await _ask(edge, slack, long, "1700000300.000002", "the end")
    sent = _sent(slack)
    assert not [ping for ping in FORBIDDEN if ping in sent]
    assert "&lt;!channel&gt;" in sent and "a &amp; b &lt;i&gt;" in sent
    assert short == [f"{PINGS} a & b <i>"]  # readers see the text, nobody is pinged
    # streamed: one message of several markdown_text chunks; else several messages
    assert (len(parts) == 1) is streaming and all(PINGS in part for part in parts)
    methods = {c.method for c in slack.calls}
    assert ("chat.appendStream" in methods) is streaming


async def test_an_allow_mentions_setting_lets_only_the_named_kinds_through(
    emulator: Emulator, slack: FakeSlack, telegram: FakeBotAPI
) -> None:
    allowed = {"allow_mentions": ["users", "here"], "streaming": False}
    async with serving(emulator, slack, telegram, slack_options=allowed) as edge:
        await _ask(edge, slack, PINGS, "1700000300.000003", "boss>")
    sent = _sent(slack)
    assert "<@U0999>" in sent and "<@W0999|boss>" in sent and "<!here>" in sent
    assert not [p for p in ("<!channel", "<!everyone", "<!subteam") if p in sent]


LINKS = (
    "[you](tg://user?id=42) [join us](tg://join?invite=AAAA) [resolve](tg://resolve?domain=x) "
    "[site](https://example.com/a) [plain](http://example.com/b) [mail](mailto:a@example.com) "
    "[js](javascript:alert(1)) [file](file:///etc/passwd)"
)


async def test_only_web_and_mail_links_become_telegram_links(emulator: Emulator) -> None:
    user = FakeUser(4242, "Eve")
    async with open_fake_bot_api() as fake, running_bridge(emulator, fake) as _:
        fake.queue(user.says(fake, user.id, LINKS))
        with anyio.fail_after(15):
            await fake.wait_for(lambda: any("you join us" in m.text for m in fake.sent(user.id)))
    entities = [
        entity
        for call in fake.calls
        for entity in (call.params.get("entities") or [])
        if isinstance(entity, dict)
    ]
    urls = sorted({str(e.get("url")) for e in entities if e.get("type") == "text_link"})
    assert urls == ["http://example.com/b", "https://example.com/a", "mailto:a@example.com"]
    shown = [m.text for m in fake.sent(user.id) if "you join us" in m.text][-1]
    assert "tg://" not in shown
