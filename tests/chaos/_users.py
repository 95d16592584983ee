"""R7, hostile users: one `bridge serve` (Slack over HTTP events, Telegram over its webhook)
takes a battery of attacks from users of the chat platforms, each judged refused,
contained or succeeded; the process must keep serving and answer a plain message after.

Attacks are small async functions over a `UserRig`; each returns the outcome it saw."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
import httpx
from bridge_slack import SlackAdapter, SlackConfig
from bridge_slack.testing import EventSender, FakeSlack, event_callback, open_fake_slack
from bridge_telegram import WEBHOOK_PATH
from bridge_telegram.testing import FakeBotAPI, FakeUser, open_fake_bot_api

from bridge.emulator import Emulator
from bridge.runtime import Runtime
from bridge.testing import open_emulator
from tests.chaos._kit import Figures, bridge_settings, running, telegram_adapter

Outcome = Literal["refused", "contained", "succeeded"]

SECRET = "users-webhook-secret"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MALLORY = FakeUser(6600, "Mallory")
POISON = "*" * 600 + "a" + "*" * 600
PINGS = "<!channel> <!here> <!everyone> <!subteam^S1|@all> <@U0999>"
WAIT = 30.0


@dataclass
class UserRig:
    runtime: Runtime
    emulator: Emulator
    slack: FakeSlack
    telegram: FakeBotAPI
    events: EventSender
    next_update: int = 1

    @property
    def webhook(self) -> str:
        return f"{self.runtime.http.base_url}{WEBHOOK_PATH}"

    async def telegram_says(self, user: FakeUser, chat: int, text: str) -> None:
        update = {"update_id": self.next_update, "message": user.says(self.telegram, chat, text)}
        self.next_update += 1
        async with httpx.AsyncClient(timeout=WAIT) as http:
            await http.post(self.webhook, json=update, headers={SECRET_HEADER: SECRET})

    async def slack_mention(self, user: str, text: str, ts: str, channel: str = "C7") -> None:
        event = {"type": "app_mention", "channel": channel, "user": user, "text": text, "ts": ts}
        await self.events.event(event_callback(event))

    async def slack_thread_text(self, ts: str, channel: str = "C7") -> str:
        """The finished reply text of the thread `ts`, waited for."""

        def finished() -> str:
            shown = [m.visible_text for m in self.slack.replies(channel, ts) if not m.streaming]
            return "\n".join(shown)

        with anyio.fail_after(WAIT):
            return str(await self.slack.wait_for(finished))


Attack = Callable[[UserRig], Awaitable[Outcome]]


async def poison_markdown_on_telegram(rig: UserRig) -> Outcome:
    await rig.telegram_says(MALLORY, MALLORY.id, POISON)
    with anyio.fail_after(WAIT):
        await rig.telegram.wait_for(
            lambda: any("*" in m.text for m in rig.telegram.sent(MALLORY.id))
        )
    return "contained"


async def poison_markdown_on_slack(rig: UserRig) -> Outcome:
    await rig.slack_mention("U66", f"<@UBOT> {POISON}", "1700007000.000001")
    shown = await rig.slack_thread_text("1700007000.000001")
    return "contained" if shown.count("*") >= 1200 else "succeeded"


async def broadcast_through_agent_output_on_slack(rig: UserRig) -> Outcome:
    await rig.slack_mention("U66", f"<@UBOT> {PINGS}", "1700007000.000002")
    await rig.slack_thread_text("1700007000.000002")
    sent = json.dumps([c.args for c in rig.slack.calls], ensure_ascii=False)
    leaked = [p for p in ("<!channel", "<!here", "<!everyone", "<!subteam", "<@U0999") if p in sent]
    return "succeeded" if leaked else "refused"


async def mention_link_through_agent_output_on_telegram(rig: UserRig) -> Outcome:
    chat = MALLORY.id
    await rig.telegram_says(MALLORY, chat, "[admin](tg://user?id=1) [join](tg://join?invite=x)")
    with anyio.fail_after(WAIT):
        await rig.telegram.wait_for(lambda: any("admin" in m.text for m in rig.telegram.sent(chat)))
    urls = [e.get("url", "") for m in rig.telegram.sent(chat) for e in m.entities]
    return "succeeded" if any(url.startswith("tg:") for url in urls) else "refused"


async def oversize_slack_body(rig: UserRig) -> Outcome:
    url = httpx.URL(f"{rig.runtime.http.base_url}/slack/events")
    head = f"POST {url.path} HTTP/1.1\r\nHost: x\r\nContent-Length: {200 << 20}\r\n\r\n"
    async with await anyio.connect_tcp(url.host, url.port or 80) as stream:
        await stream.send(head.encode())
        with anyio.fail_after(WAIT):
            first = await stream.receive()
    return "refused" if b" 413 " in first.split(b"\r\n", 1)[0] + b" " else "succeeded"


async def unsigned_slack_event(rig: UserRig) -> Outcome:
    payload = json.dumps(event_callback({"type": "app_mention", "text": "x", "ts": "1.0"}))
    async with httpx.AsyncClient(timeout=WAIT) as http:
        response = await http.post(
            f"{rig.runtime.http.base_url}/slack/events",
            content=payload,
            headers={"content-type": "application/json"},
        )
    return "refused" if response.status_code == 401 else "succeeded"


async def deeply_nested_telegram_update(rig: UserRig) -> Outcome:
    async with httpx.AsyncClient(timeout=WAIT) as http:
        response = await http.post(
            rig.webhook,
            content="[" * 100_000 + "]" * 100_000,
            headers={SECRET_HEADER: SECRET, "content-type": "application/json"},
        )
    return "refused" if 400 <= response.status_code < 500 else "succeeded"


ATTACKS: dict[str, Attack] = {
    "poison Markdown (Telegram)": poison_markdown_on_telegram,
    "poison Markdown (Slack)": poison_markdown_on_slack,
    "broadcast via agent output (Slack)": broadcast_through_agent_output_on_slack,
    "tg:// links via agent output (Telegram)": mention_link_through_agent_output_on_telegram,
    "200 MB body (Slack)": oversize_slack_body,
    "unsigned event (Slack)": unsigned_slack_event,
    "100k-deep JSON (Telegram)": deeply_nested_telegram_update,
}


@dataclass
class UsersReport:
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    still_serving: bool = False
    figures: Figures = field(default_factory=lambda: Figures("R7 hostile users"))


def _adapters(slack: FakeSlack, fake: FakeBotAPI) -> list[Any]:
    config = SlackConfig.model_validate(
        {
            "mode": "http",
            "bot_token": slack.bot_token,
            "signing_secret": slack.signing_secret,
            "api_url": slack.api_url,
            "default_agent": "echo",
        }
    )
    telegram = telegram_adapter(
        fake.token, fake.api_url, mode="webhook", secret_token=SECRET, default_agent="echo"
    )
    return [SlackAdapter(config), telegram]


async def run_hostile_users(attacks: dict[str, Attack] | None = None) -> UsersReport:
    """Every attack against one bridge, then a plain message that must still be answered."""
    report = UsersReport()
    started = time.monotonic()
    async with (
        open_emulator() as emulator,
        open_fake_slack() as slack,
        open_fake_bot_api() as fake,
        running(bridge_settings(emulator), _adapters(slack, fake)) as runtime,
    ):
        events = EventSender(f"{runtime.http.base_url}/slack/events", slack.signing_secret)
        rig = UserRig(runtime, emulator, slack, fake, events)
        for name, attack in (attacks or ATTACKS).items():
            try:
                report.outcomes[name] = await attack(rig)
            except (TimeoutError, httpx.HTTPError, OSError) as exc:
                report.errors[name] = f"{type(exc).__name__}: {exc}"
        plain = FakeUser(6601, "Plain")
        await rig.telegram_says(plain, plain.id, "are you still there?")
        with anyio.fail_after(WAIT):
            await fake.wait_for(
                lambda: any(m.text == "are you still there?" for m in fake.sent(plain.id))
            )
        report.still_serving = all(runtime.started.values())
    counts = Counter(report.outcomes.values())
    figures = report.figures
    figures.turns = len(report.outcomes) + len(report.errors)
    figures.answered = counts["refused"] + counts["contained"]
    figures.rejections = counts["refused"]
    figures.seconds = time.monotonic() - started
    figures.notes.append(
        f"{figures.turns} attacks: {counts['refused']} refused, {counts['contained']} contained, "
        f"{counts['succeeded']} succeeded, {len(report.errors)} errored; process crashes: "
        f"{0 if report.still_serving else 1}"
    )
    return report
