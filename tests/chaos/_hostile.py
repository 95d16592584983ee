"""R5, platform side: forged, stale and malformed requests are refused with 4xx and start
nothing; 100k-character messages and events over `max_event_bytes` are answered; the
bridge keeps answering legitimate messages throughout. Also malformed configuration:
a TOML syntax error and wrong types are a `ConfigError` naming the key and the file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
from bridge_slack import SlackAdapter, SlackConfig
from bridge_slack.testing import EventSender, FakeSlack, event_callback, open_fake_slack, sign
from bridge_telegram import WEBHOOK_PATH
from bridge_telegram.testing import FakeBotAPI, FakeUser, open_fake_bot_api

from bridge.adapters import build_adapter
from bridge.config import load_settings
from bridge.emulator import Emulator
from bridge.errors import ConfigError
from bridge.render import to_telegram
from bridge.runtime import Runtime
from bridge.testing import open_emulator
from tests.chaos._kit import (
    TURN_TIMEOUT,
    Figures,
    accepted_invokes,
    bridge_settings,
    running,
    telegram_adapter,
    telegram_rig,
)

__all__ = ["HostileReport", "config_errors", "run_hostile_requests"]

SECRET = "hostile-webhook-secret"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
BIG = 100_000
USER = FakeUser(7500, "Mal")
#: Signed or secret-bearing bodies that are not events or updates.
ODD_BODIES = (
    "{not json",
    "[]",
    "null",
    "{}",
    '{"type": "event_callback"}',
    '{"type": "event_callback", "event": null}',
    '{"type": "event_callback", "event": {"type": "app_mention"}}',
    '{"type": "event_callback", "event": {"type": "app_mention", "text": 42, "channel": []}}',
    '{"update_id": "x"}',
    '{"update_id": 1, "message": "hi"}',
    '{"update_id": 2, "message": {"chat": {}}}',
    "[" * 100_000 + "]" * 100_000,
)


@dataclass
class HostileReport:
    """Statuses of the hostile requests, by kind, and what the legitimate messages got."""

    statuses: dict[str, list[int]] = field(default_factory=dict)
    answered: dict[str, int] = field(default_factory=dict)
    invokes: dict[str, int] = field(default_factory=dict)
    still_serving: bool = False
    figures: Figures = field(default_factory=lambda: Figures("R5 hostile input"))


async def _slack_hostile(slack: FakeSlack, url: str, report: HostileReport) -> None:
    sender = EventSender(url, slack.signing_secret)
    payload = json.dumps(event_callback(_mention("forged", "1700000500.000001")))
    statuses = report.statuses

    def note(kind: str, response: httpx.Response) -> None:
        statuses.setdefault(kind, []).append(response.status_code)

    note("slack forged signature", await sender.post(payload, "application/json", secret="x"))
    stale = int(time.time()) - 600
    note("slack stale timestamp", await sender.post(payload, "application/json", timestamp=stale))
    async with httpx.AsyncClient(timeout=30) as http:
        headers = {"content-type": "application/json"}
        note("slack unsigned", await http.post(url, content=payload, headers=headers))
        odd_stamp = {**headers, **sign(slack.signing_secret, payload), **BAD_STAMP}
        note("slack bad timestamp", await http.post(url, content=payload, headers=odd_stamp))
        statuses.setdefault("slack oversize", []).append(await _declared_only(url, 200 << 20))
        for body in ODD_BODIES:
            note("slack unsigned odd body", await http.post(url, content=body, headers=headers))
            signed = {**headers, **sign(slack.signing_secret, body)}
            note("slack signed odd body", await http.post(url, content=body, headers=signed))


BAD_STAMP = {"X-Slack-Request-Timestamp": "not-a-number"}


async def _declared_only(url: str, size: int) -> int:
    """The status of a POST declaring a `size`-byte body and sending none (raw socket)."""
    parts = httpx.URL(url)
    head = f"POST {parts.path} HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n"
    async with await anyio.connect_tcp(parts.host, parts.port or 80) as stream:
        await stream.send(head.encode())
        with anyio.fail_after(10):
            first = await stream.receive()
    return int(first.split(b" ", 2)[1])


async def _telegram_hostile(url: str, report: HostileReport) -> None:
    update = {"update_id": 1, "message": {"message_id": 1, "text": "forged"}}
    statuses = report.statuses
    async with httpx.AsyncClient(timeout=30) as http:
        missing = await http.post(url, json=update)
        wrong = await http.post(url, json=update, headers={SECRET_HEADER: "guess"})
        statuses["telegram no secret"] = [missing.status_code]
        statuses["telegram wrong secret"] = [wrong.status_code]
        for body in ODD_BODIES:
            headers = {SECRET_HEADER: SECRET, "content-type": "application/json"}
            response = await http.post(url, content=body, headers=headers)
            statuses.setdefault("telegram odd body", []).append(response.status_code)


def _mention(text: str, ts: str, channel: str = "C9") -> dict[str, Any]:
    return {
        "type": "app_mention",
        "channel": channel,
        "user": "U1",
        "ts": ts,
        "text": f"<@UBOT> {text}",
    }


def webhook_adapters(
    slack: FakeSlack, fake: FakeBotAPI, *, secret: str = SECRET, telegram_agent: str = "writer"
) -> list[Any]:
    """Slack over HTTP events (agent echo) and Telegram over its webhook, on the fakes."""
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
        fake.token, fake.api_url, mode="webhook", secret_token=secret, default_agent=telegram_agent
    )
    return [SlackAdapter(config), telegram]


async def _post_update(url: str, text: str, update_id: int, fake: FakeBotAPI) -> None:
    update = {"update_id": update_id, "message": USER.says(fake, USER.id, text)}
    async with httpx.AsyncClient(timeout=30) as http:
        await http.post(url, json=update, headers={SECRET_HEADER: SECRET})


async def _telegram_answer(emulator: Emulator, fake: FakeBotAPI, question: str) -> int:
    """Waits for the task asked `question` and its answer (every part) in the chat; returns
    how many times the first part shows."""
    while True:
        found = [t for t in emulator.tasks.values() if any(u.text == question for u in t.turns)]
        if found:
            break
        await anyio.sleep(0.01)
    record = await emulator.wait_for_status(found[0].id, "completed")
    parts = [part.text for part in to_telegram(record.to_json()["result"])]
    await fake.wait_for(lambda: all(any(m.text == p for m in fake.sent(USER.id)) for p in parts))
    return sum(m.text == parts[0] for m in fake.sent(USER.id))


async def run_hostile_requests() -> HostileReport:
    """One bridge (Slack HTTP mode, Telegram webhook mode) receives the hostile requests,
    then three legitimate messages: a 100k-character Slack mention (echoed back, so its
    answer is split and attached as a file), a 100k-character Telegram message and a
    plain one. Then a bridge with `max_event_bytes` = 4096 gets an answer sent as one
    5,000-byte event."""
    report = HostileReport()
    started = time.monotonic()
    async with (
        open_emulator() as emulator,
        open_fake_slack() as slack,
        open_fake_bot_api() as fake,
    ):
        async with running(bridge_settings(emulator), webhook_adapters(slack, fake)) as runtime:
            base = runtime.http.base_url
            await _slack_hostile(slack, f"{base}/slack/events", report)
            await _telegram_hostile(f"{base}{WEBHOOK_PATH}", report)
            with anyio.fail_after(TURN_TIMEOUT * 2):
                await _legitimate(runtime, emulator, slack, fake, report)
            report.still_serving = all(runtime.started.values())
        report.invokes = dict(accepted_invokes(emulator))
    report.answered["telegram 5000-byte event"] = await _oversize_event()
    _figures(report, time.monotonic() - started)
    return report


async def _oversize_event() -> int:
    """A 5,000-byte `chunk` event past a 4,096-byte bound (which the task events, about
    1.5 KB, stay under): the stream is dropped and the answer fetched by polling; returns
    how many times its first part shows."""
    async with telegram_rig("writer", upstream={"max_event_bytes": 4096}) as rig:
        rig.fake.queue(USER.says(rig.fake, USER.id, "chars=5000 chunks=1"))
        with anyio.fail_after(TURN_TIMEOUT):
            return await _telegram_answer(rig.emulator, rig.fake, "chars=5000 chunks=1")


async def _legitimate(
    runtime: Runtime, emulator: Emulator, slack: FakeSlack, fake: FakeBotAPI, report: HostileReport
) -> None:
    sender = EventSender(f"{runtime.http.base_url}/slack/events", slack.signing_secret)
    url = f"{runtime.http.base_url}{WEBHOOK_PATH}"
    big = "y" * BIG
    questions = {"telegram 100k": f"chars=300 {big}", "telegram plain": "chars=120"}
    await sender.event(event_callback(_mention(big, "1700000600.000001")))
    for number, question in enumerate(questions.values()):
        await _post_update(url, question, 100 + number, fake)
    for name, question in questions.items():
        report.answered[name] = await _telegram_answer(emulator, fake, question)
    files = await slack.wait_for(
        lambda: [m for m in slack.replies("C9", "1700000600.000001") if m.files]
    )
    replies = slack.replies("C9", "1700000600.000001")
    report.answered["slack 100k"] = len(files) if len(replies) == 2 else 0


def _figures(report: HostileReport, seconds: float) -> None:
    statuses = [code for codes in report.statuses.values() for code in codes]
    figures = report.figures
    figures.turns = len(statuses) + len(report.answered)
    figures.answered = sum(count >= 1 for count in report.answered.values())
    figures.lost = sum(count == 0 for count in report.answered.values())
    figures.duplicates = sum(max(0, count - 1) for count in report.answered.values())
    figures.duplicates += sum(max(0, count - 1) for count in report.invokes.values())
    figures.rejections = sum(400 <= code < 500 for code in statuses)
    figures.seconds = seconds
    server_errors = sum(code >= 500 for code in statuses)
    accepted = sum(code < 400 for code in statuses)
    figures.notes.append(
        f"{len(statuses)} hostile requests: {figures.rejections} refused 4xx, "
        f"{accepted} acknowledged and ignored, {server_errors} answered 5xx"
    )


# -- configuration ------------------------------------------------------------------

BAD_CONFIGS = {
    "syntax": "[upstream\nbase_url = 'http://x'\n",
    "type": "[conversations]\nlock_lease = 'soon'\n",
    "typo": "[conversations]\nlock_leese = 1.0\n",
    "adapter type": "[adapters.telegram]\nbot_token = '1:x'\npoll_timeout = 'long'\n",
}


def config_errors(folder: Path) -> dict[str, ConfigError]:
    """Each of `BAD_CONFIGS` written to a file and loaded as `bridge serve` would."""
    found: dict[str, ConfigError] = {}
    for name, text in BAD_CONFIGS.items():
        path = folder / f"{name.replace(' ', '-')}.toml"
        path.write_text(text)
        try:
            settings = load_settings(path, environ={})
            for adapter in settings.adapters:
                build_adapter(settings, adapter)
        except ConfigError as exc:
            found[name] = exc
    return found


def cli_config_error(folder: Path) -> tuple[int, str]:
    """`python -m bridge --config <bad file> serve`: exit code and stderr."""
    path = folder / "cli-bad.toml"
    path.write_text(BAD_CONFIGS["adapter type"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
    done = subprocess.run(
        [sys.executable, "-m", "bridge", "--config", str(path), "serve"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=folder,
        check=False,
    )
    return done.returncode, done.stderr
