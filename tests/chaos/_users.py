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
from bridge_slack.testing import EventSender, FakeSlack, event_callback, open_fake_slack
from bridge_telegram import WEBHOOK_PATH
from bridge_telegram.testing import FakeBotAPI, FakeUser, open_fake_bot_api

from bridge.chat import ChatPolicy
from bridge.emulator import Emulator
from bridge.runtime import Runtime
from bridge.testing import open_emulator
from tests.chaos._hostile import webhook_adapters
from tests.chaos._kit import Figures, bridge_settings, running

Outcome = Literal["refused", "contained", "succeeded"]

SECRET = "users-webhook-secret"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MALLORY = FakeUser(6600, "Mallory")
POISON = "*" * 600 + "a" + "*" * 600
PINGS = "<!channel> <!here> <!everyone> <!subteam^S1|@all> <@U0999>"
WAIT = 30.0
PLACEHOLDER = "_Thinking…_"  # what the answer's message shows before any text


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
            replies = self.slack.replies(channel, ts)
            if any(m.streaming or m.visible_text == PLACEHOLDER for m in replies):
                return ""  # the answer's message is still being drawn
            return "\n".join(m.visible_text for m in replies)

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


async def _slow_slack_turn(rig: UserRig, ts: str) -> None:
    """U1 asks the slow agent in C7; returns once its tool step shows (the turn runs)."""
    await rig.slack_mention("U1", "<@UBOT> agent:slow take your time", ts)
    with anyio.fail_after(WAIT):
        await rig.slack.wait_for(
            lambda: any(
                "slow_tool" in str(c.args.get("status"))
                for c in rig.slack.calls_to("assistant.threads.setStatus")
            )
        )


def _slack_reply(thread_ts: str, user: str, text: str) -> dict[str, Any]:
    return {
        "type": "message",
        "channel": "C7",
        "channel_type": "channel",
        "user": user,
        "text": text,
        "ts": f"{time.time():.6f}",
        "thread_ts": thread_ts,
    }


async def _slack_turn_stopped(rig: UserRig) -> bool:
    """Whether any upstream task of the slow agent ended stopped."""
    slow = rig.emulator.agent("slow").id
    return any(
        task.latest.status == "stopped"
        for task in rig.emulator.tasks.values()
        if task.agent_id == slow
    )


async def stop_another_members_turn_on_slack(rig: UserRig) -> Outcome:
    rig.slack.add_user("U66", "Mallory Member", "mallory@example.com")
    await _slow_slack_turn(rig, "1700007100.000001")
    for text in ("stop", "agent:writer take over", "reset"):
        await rig.events.event(event_callback(_slack_reply("1700007100.000001", "U66", text)))
    with anyio.fail_after(WAIT):
        await rig.slack.wait_for(lambda: sum(e["user"] == "U66" for e in rig.slack.ephemerals) >= 3)
    return "succeeded" if await _slack_turn_stopped(rig) else "refused"


def _stop_click(value: str, user: str, team: str, channel: str) -> dict[str, Any]:
    return {
        "type": "block_actions",
        "team": {"id": team},
        "user": {"id": user},
        "channel": {"id": channel},
        "trigger_id": "1.2",
        "actions": [{"action_id": "bridge_stop", "value": value, "block_id": "bridge_controls"}],
    }


async def forged_stop_click_on_slack(rig: UserRig) -> Outcome:
    """Mallory replays U1's Stop button as herself and claiming other places; then U1's own
    click must still work (so the refusals were the check, not a broken button)."""
    placeholder = rig.slack.replies("C7", "1700007100.000001")[0]
    value = placeholder.blocks[-1]["elements"][0]["value"]
    for user, team, channel in (("U66", "T0001", "C7"), ("U66", "T9", "C9"), ("U1", "T9", "C9")):
        await rig.events.action(_stop_click(value, user, team, channel))
    if await _slack_turn_stopped(rig):
        return "succeeded"
    await rig.events.action(_stop_click(value, "U1", "T0001", "C7"))
    slow = rig.emulator.agent("slow").id
    [task] = [task.id for task in rig.emulator.tasks.values() if task.agent_id == slow]
    with anyio.fail_after(WAIT):
        await rig.emulator.wait_for_status(task, "stopped")
    return "refused"


FLOOD = FakeUser(6602, "Flood")
FLOOD_MESSAGES = 150


async def message_flood_on_telegram(rig: UserRig) -> Outcome:
    """150 messages from one user: at most the per-user bucket's worth may go upstream."""
    for number in range(FLOOD_MESSAGES):
        await rig.telegram_says(FLOOD, FLOOD.id, f"flood {number}")
    with anyio.fail_after(WAIT):
        await rig.telegram.wait_for(
            lambda: any("slow down" in m.text.lower() for m in rig.telegram.sent(FLOOD.id))
        )
    email = f"{FLOOD.id}@telegram.invalid"
    upstream = [
        r
        for r in rig.emulator.invokes()
        if (r.json or {}).get("input", {}).get("user", {}).get("email") == email
    ]
    return "refused" if len(upstream) <= ChatPolicy().user_rate_limit else "succeeded"


ATTACKS: dict[str, Attack] = {
    "poison Markdown (Telegram)": poison_markdown_on_telegram,
    "poison Markdown (Slack)": poison_markdown_on_slack,
    "broadcast via agent output (Slack)": broadcast_through_agent_output_on_slack,
    "tg:// links via agent output (Telegram)": mention_link_through_agent_output_on_telegram,
    "200 MB body (Slack)": oversize_slack_body,
    "unsigned event (Slack)": unsigned_slack_event,
    "100k-deep JSON (Telegram)": deeply_nested_telegram_update,
    "stop, switch, reset another member's turn (Slack)": stop_another_members_turn_on_slack,
    "forged Stop clicks (Slack)": forged_stop_click_on_slack,
    "150-message flood (Telegram)": message_flood_on_telegram,
}


@dataclass
class UsersReport:
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    still_serving: bool = False
    figures: Figures = field(default_factory=lambda: Figures("R7 hostile users"))


async def run_hostile_users(attacks: dict[str, Attack] | None = None) -> UsersReport:
    """Every attack against one bridge, then a plain message that must still be answered."""
    report = UsersReport()
    started = time.monotonic()
    async with (
        open_emulator() as emulator,
        open_fake_slack(supports_streaming=False) as slack,
        open_fake_bot_api() as fake,
        running(
            bridge_settings(emulator),
            webhook_adapters(slack, fake, secret=SECRET, telegram_agent="echo"),
        ) as runtime,
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
