"""R2: the chat platforms refuse or fail the bridge's calls. Telegram answers 429 with
`retry_after` (the fake's `fail_next`) and 5xx (a `BotApiFront`); Slack answers HTTP 429,
`ok:false ratelimited` with HTTP 200, and 5xx (the fake's `fail`), on every method the
answer path uses, in streaming and in edit mode.

Every message must end with exactly one final message carrying its answer, and after
every rate-limit answer the next call to the same destination must come no sooner than
the wait it asked for. A destination is where the bridge sends one call at a time: a
Telegram chat (drafts apart from messages, as the adapter budgets them), or a Slack
method in one thread. (Slack's tiers are per workspace too, and the bridge pauses the
whole method, but calls already on their way when a 429 comes back cannot wait; the
fakes' arrival times cannot tell those apart from calls sent afterwards.)
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import anyio
from bridge_slack import SlackAdapter, SlackConfig
from bridge_slack.testing import EventSender, FakeSlack, event_callback, open_fake_slack
from bridge_telegram.testing import FakeBotAPI, FakeUser

from bridge.emulator import Emulator
from bridge.render import to_telegram
from bridge.testing import open_emulator
from tests.chaos._kit import (
    TURN_TIMEOUT,
    Exchange,
    Figures,
    accepted_invokes,
    bridge_settings,
    running,
    seeded,
    settle,
    telegram_rig,
    waits_honoured,
)
from tests.chaos._upstream import final_messages

__all__ = [
    "PlatformReport",
    "run_slack_platform_faults",
    "run_telegram_platform_faults",
]

#: Telegram faults: (method, status); 429s carry a `retry_after` of 1 or 2 seconds.
TELEGRAM_FAULTS = (
    ("sendMessage", 429),
    ("sendMessageDraft", 429),
    ("sendMessage", 502),
    ("sendMessage", 500),
    ("sendMessageDraft", 503),
)
#: Slack faults per mode: (method, HTTP status, error). Status 200 is `ok:false`.
SLACK_STREAM_FAULTS = (
    ("chat.startStream", 429, "ratelimited"),
    ("chat.appendStream", 200, "ratelimited"),
    ("chat.stopStream", 429, "ratelimited"),
    ("assistant.threads.setStatus", 200, "ratelimited"),
    ("chat.appendStream", 500, "internal_error"),
    ("chat.stopStream", 503, "service_unavailable"),
)
SLACK_UPDATE_FAULTS = (
    ("chat.postMessage", 429, "ratelimited"),
    ("chat.update", 200, "ratelimited"),
    ("chat.postMessage", 200, "ratelimited"),
    ("chat.update", 500, "internal_error"),
    ("chat.update", 429, "ratelimited"),
)


@dataclass
class PlatformReport:
    figures: Figures
    finals: dict[str, int]
    """Final messages carrying each message's answer."""
    others: int
    """Bot messages that carry no answer (should be none)."""
    invokes: dict[str, int]
    faults_hit: int
    settled: bool
    failed_calls: dict[str, int] = field(default_factory=dict)


# -- Telegram ---------------------------------------------------------------------


async def run_telegram_platform_faults(turns: int, seed: int) -> PlatformReport:
    """`turns` messages over private chats (one message at a time per chat), each preceded
    by a fault drawn from `TELEGRAM_FAULTS` (every kind once, then by chance)."""
    rng = seeded(seed, "telegram-platform")
    chats = max(1, min(10, turns // 4))
    kinds = list(TELEGRAM_FAULTS[:turns])
    kinds += [rng.choice(TELEGRAM_FAULTS) for _ in range(turns - len(kinds))]
    rng.shuffle(kinds)
    started = time.monotonic()
    texts: list[tuple[int, str]] = []
    async with telegram_rig("echo", seed=seed) as rig:

        async def converse(index: int) -> None:
            user = FakeUser(7100 + index, f"Plat{index}")
            for number in range(index, turns, chats):
                method, status = kinds[number]
                if status == 429:
                    rig.fake.fail_next(method, retry_after=rng.choice((1, 2)))
                else:
                    rig.front.fail_next(method, status)
                text = f"platform {seed} c{index} t{number}"
                texts.append((user.id, text))
                await _ask(rig.fake, user, text)

        async with anyio.create_task_group() as group:
            for index in range(chats):
                group.start_soon(converse, index)
        settled = await settle(rig.runtime.store, rig.emulator)
    report = _telegram_report(rig.fake, texts, rig.emulator, settled)
    report.figures.waits = rig.front.rate_limits()
    report.faults_hit = sum(1 for e in rig.front.exchanges if e.status >= 429)
    report.figures.seconds = time.monotonic() - started
    return report


async def _ask(fake: FakeBotAPI, user: FakeUser, text: str) -> None:
    """Send `text` and wait (bounded) until its answer shows in the chat."""
    answer = to_telegram(text)[0].text
    fake.queue(user.says(fake, user.id, text))
    with anyio.move_on_after(TURN_TIMEOUT):
        await fake.wait_for(lambda: any(m.text == answer for m in fake.sent(user.id)))


def _telegram_report(
    fake: FakeBotAPI, texts: list[tuple[int, str]], emulator: Emulator, settled: bool
) -> PlatformReport:
    finals: dict[str, int] = {}
    answers: set[str] = set()
    for chat_id, text in texts:
        answer = to_telegram(text)[0].text
        answers.add(answer)
        finals[text] = sum(m.text == answer for m in final_messages(fake, chat_id))
    chats = {chat_id for chat_id, _ in texts}
    others = sum(m.text not in answers for chat in chats for m in final_messages(fake, chat))
    invokes = accepted_invokes(emulator)
    figures = _figures("R2 platform faults (telegram)", finals, others, invokes)
    return PlatformReport(figures, finals, others, dict(invokes), 0, settled)


def _figures(scenario: str, finals: dict[str, int], others: int, invokes: Any) -> Figures:
    return Figures(
        scenario,
        turns=len(finals),
        answered=sum(count >= 1 for count in finals.values()),
        duplicates=sum(max(0, count - 1) for count in finals.values())
        + others
        + sum(max(0, invokes[text] - 1) for text in finals),
        lost=sum(count == 0 for count in finals.values()),
    )


# -- Slack -----------------------------------------------------------------------------


@dataclass
class _Thread:
    channel: str
    ts: str
    text: str
    directives: str
    answer: str = ""

    @property
    def question(self) -> str:
        return f"{self.text} {self.directives}"


async def run_slack_platform_faults(threads: int, seed: int) -> PlatformReport:
    """`threads` mentions answered with native streaming, then `threads` more by message
    edits; before each phase one fault per entry of its fault list (and more by chance,
    one per thread in all) is queued on the fake Slack Web API."""
    rng = seeded(seed, "slack-platform")
    started = time.monotonic()
    limited: dict[str, list[float]] = defaultdict(list)
    asked: list[_Thread] = []
    async with open_emulator(seed=seed) as emulator, open_fake_slack(enforce_tiers=False) as slack:
        settled = True
        for streaming, faults in ((True, SLACK_STREAM_FAULTS), (False, SLACK_UPDATE_FAULTS)):
            chosen = list(faults[:threads]) + [
                rng.choice(faults) for _ in range(threads - len(faults))
            ]
            for method, status, error in chosen:
                wait = rng.choice((1, 2)) if error == "ratelimited" else 0
                slack.fail(method, error=error, status=status, retry_after=wait)
                if wait:
                    limited[method].append(float(wait))
            # Streamed answers take 3 s in 6 chunks, so that `chat.appendStream` happens
            # (and can fail) after the pause a rate-limited `chat.startStream` asks for.
            directives = (
                "chars=300 chunks=6 seconds=3" if streaming else "chars=200 chunks=4 seconds=4"
            )
            phase = [
                _Thread(
                    f"C{n % 3}",
                    f"1700000{int(streaming)}00.{n:06d}",
                    f"slack {seed} {n}",
                    directives,
                )
                for n in range(len(asked), len(asked) + threads)
            ]
            asked += phase
            settled &= await _slack_phase(emulator, slack, phase, streaming=streaming)
        report = _slack_report(slack, asked, emulator, settled)
        report.figures.waits = waits_honoured(_slack_exchanges(slack, limited))
        report.faults_hit = sum(1 for call in slack.calls if not call.ok)
    report.figures.seconds = time.monotonic() - started
    return report


async def _slack_phase(
    emulator: Emulator, slack: FakeSlack, threads: list[_Thread], *, streaming: bool
) -> bool:
    config = SlackConfig.model_validate(
        {
            "mode": "http",
            "bot_token": slack.bot_token,
            "signing_secret": slack.signing_secret,
            "api_url": slack.api_url,
            "default_agent": "writer",
            "streaming": streaming,
        }
    )
    settings = bridge_settings(emulator)
    async with running(settings, [SlackAdapter(config)]) as runtime:
        events = EventSender(f"{runtime.http.base_url}/slack/events", slack.signing_secret)
        for thread in threads:
            event = {"type": "app_mention", "user": "U1", "channel": thread.channel}
            event |= {"ts": thread.ts, "text": f"<@UBOT> {thread.question}"}
            await events.event(event_callback(event))
        with anyio.move_on_after(TURN_TIMEOUT):
            for thread in threads:
                thread.answer = await _result(emulator, thread.question)
            await slack.wait_for(lambda: all(_shows(slack, t) for t in threads))
        return await settle(runtime.store, emulator)


async def _result(emulator: Emulator, question: str) -> str:
    """The completed answer to `question` (waits for its task)."""
    while True:
        for task in list(emulator.tasks.values()):
            if any(turn.text == question for turn in task.turns):
                record = await emulator.wait_for_status(task.id, "completed")
                return str(record.to_json()["result"])
        await anyio.sleep(0.01)


def _shows(slack: FakeSlack, thread: _Thread) -> bool:
    return any(_is_answer(m.visible_text, thread) for m in slack.replies(thread.channel, thread.ts))


def _is_answer(text: str, thread: _Thread) -> bool:
    return bool(thread.answer) and text.strip() == thread.answer.strip()


def _slack_exchanges(slack: FakeSlack, limited: dict[str, list[float]]) -> list[Exchange]:
    """Slack's calls with the waits the injected rate limits asked for (the fake does not
    record them; with tiers off, its rate-limit answers are exactly the injected ones,
    consumed in order per method), each addressed to (method, channel, thread)."""
    waits = {method: list(values) for method, values in limited.items()}
    exchanges = []
    for call in slack.calls:
        wait = waits[call.method].pop(0) if call.error == "ratelimited" else None
        exchanges.append(Exchange((call.method, *_thread_of(slack, call.args)), call.at, wait))
    return exchanges


def _thread_of(slack: FakeSlack, args: dict[str, Any]) -> tuple[str, str]:
    channel = str(args.get("channel") or args.get("channel_id") or "")
    if args.get("thread_ts"):
        return channel, str(args["thread_ts"])
    message = slack.message(channel, str(args.get("ts")))
    return channel, str(message.thread_ts if message is not None else args.get("ts"))


def _slack_report(
    slack: FakeSlack, threads: list[_Thread], emulator: Emulator, settled: bool
) -> PlatformReport:
    finals = {
        t.question: sum(_is_answer(m.visible_text, t) for m in slack.replies(t.channel, t.ts))
        for t in threads
    }
    others = sum(
        not _is_answer(m.visible_text, t) for t in threads for m in slack.replies(t.channel, t.ts)
    )
    invokes = accepted_invokes(emulator)
    figures = _figures("R2 platform faults (slack)", finals, others, invokes)
    failed: dict[str, int] = defaultdict(int)
    for call in slack.calls:
        if not call.ok:
            failed[f"{call.method} {call.status} {call.error}"] += 1
    return PlatformReport(figures, finals, others, dict(invokes), 0, settled, dict(failed))
