"""R3: two replicas (two `serve()` runtimes in one process, each with its own replica id)
sharing a Redis store. Every Slack event reaches replica A while Slack's three retries
(same `event_id`, `X-Slack-Retry-Num` 1 to 3) reach replica B at the same moment; every
Telegram update (webhook mode) reaches A while its replay reaches B. Each message must
start one upstream turn and get one answer.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
from bridge_slack import SlackAdapter, SlackConfig
from bridge_slack.testing import EventSender, FakeSlack, event_callback, open_fake_slack
from bridge_telegram import WEBHOOK_PATH
from bridge_telegram.testing import FakeBotAPI, FakeUser, open_fake_bot_api

from bridge.emulator import Emulator
from bridge.render import to_telegram
from bridge.runtime import Runtime
from bridge.testing import open_emulator
from tests.chaos._kit import (
    TURN_TIMEOUT,
    Figures,
    accepted_invokes,
    bridge_settings,
    running,
    settle,
    telegram_adapter,
)

__all__ = ["SECRET", "Delivered", "ReplicaReport", "Replicas", "run_replicas"]

SECRET = "chaos-webhook-secret"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
SLACK_RETRIES = 3


@dataclass
class Delivered:
    """One message: its text, where its answer goes, the HTTP statuses of its deliveries."""

    platform: str
    text: str
    where: tuple[str, str]
    statuses: list[int] = field(default_factory=list)
    finals: int = 0


@dataclass
class ReplicaReport:
    figures: Figures
    messages: list[Delivered]
    invokes: Counter[str]
    replica_ids: tuple[str, str]
    settled: bool


@dataclass
class Replicas:
    """Both replicas and the platforms they talk to."""

    a: Runtime
    b: Runtime
    emulator: Emulator
    slack: FakeSlack
    telegram: FakeBotAPI
    http: httpx.AsyncClient

    def events(self, runtime: Runtime) -> EventSender:
        return EventSender(f"{runtime.http.base_url}/slack/events", self.slack.signing_secret)

    async def post_update(self, runtime: Runtime, update: dict[str, Any]) -> int:
        url = f"{runtime.http.base_url}{WEBHOOK_PATH}"
        response = await self.http.post(url, json=update, headers={SECRET_HEADER: SECRET})
        return response.status_code


def _slack_adapter(slack: FakeSlack) -> SlackAdapter:
    return SlackAdapter(
        SlackConfig.model_validate(
            {
                "mode": "http",
                "bot_token": slack.bot_token,
                "signing_secret": slack.signing_secret,
                "api_url": slack.api_url,
                "default_agent": "echo",
                # One message edited to the answer: Slack's streaming tiers (20/min) would
                # make this scenario about rate limits, which R2 covers.
                "streaming": False,
            }
        )
    )


async def _slack_message(replicas: Replicas, message: Delivered, channel: str) -> None:
    ts = message.where[1]
    event = {"type": "app_mention", "channel": channel, "user": "U1", "ts": ts}
    payload = event_callback({**event, "text": f"<@UBOT> {message.text}"})

    async def deliver(runtime: Runtime, retry: int | None) -> None:
        response = await replicas.events(runtime).event(payload, retry_num=retry)
        message.statuses.append(response.status_code)

    async with anyio.create_task_group() as group:
        group.start_soon(deliver, replicas.a, None)
        for retry in range(1, SLACK_RETRIES + 1):
            group.start_soon(deliver, replicas.b, retry)


async def _telegram_message(replicas: Replicas, message: Delivered, user: FakeUser) -> None:
    fake = replicas.telegram
    update = {"update_id": 50_000 + user.id, "message": user.says(fake, user.id, message.text)}

    async def deliver(runtime: Runtime) -> None:
        message.statuses.append(await replicas.post_update(runtime, update))

    async with anyio.create_task_group() as group:
        group.start_soon(deliver, replicas.a)
        group.start_soon(deliver, replicas.b)


def _answered(replicas: Replicas, message: Delivered) -> int:
    """How many final messages the message got (all bot messages of its thread or chat)."""
    if message.platform == "slack":
        channel, ts = message.where
        return len(replicas.slack.replies(channel, ts))
    chat_id = int(message.where[0])
    return len(replicas.telegram.sent(chat_id))


def _shows_answer(replicas: Replicas, message: Delivered) -> bool:
    if message.platform == "slack":
        channel, ts = message.where
        return any(m.visible_text == message.text for m in replicas.slack.replies(channel, ts))
    answer = to_telegram(message.text)[0].text
    return any(m.text == answer for m in replicas.telegram.sent(int(message.where[0])))


async def _wait_answered(replicas: Replicas, messages: list[Delivered]) -> None:
    async def slack() -> None:
        await replicas.slack.wait_for(
            lambda: all(_shows_answer(replicas, m) for m in messages if m.platform == "slack")
        )

    async def telegram() -> None:
        await replicas.telegram.wait_for(
            lambda: all(_shows_answer(replicas, m) for m in messages if m.platform == "telegram")
        )

    async with anyio.create_task_group() as group:
        group.start_soon(slack)
        group.start_soon(telegram)


def _messages(seed: int, slack: int, telegram: int, start: int) -> list[Delivered]:
    found = [
        Delivered("slack", f"replica {seed} s{n}", (f"C{n % 4}", f"1700000000.{start + n:06d}"))
        for n in range(slack)
    ]
    found += [
        Delivered("telegram", f"replica {seed} t{n}", (str(9000 + start + n), ""))
        for n in range(telegram)
    ]
    return found


async def _deliver_all(replicas: Replicas, messages: list[Delivered]) -> None:
    async with anyio.create_task_group() as group:
        for message in messages:
            if message.platform == "slack":
                group.start_soon(_slack_message, replicas, message, message.where[0])
            else:
                user = FakeUser(int(message.where[0]), "Rep")
                group.start_soon(_telegram_message, replicas, message, user)


async def run_replicas(slack: int, telegram: int, seed: int, redis_url: str) -> ReplicaReport:
    """Deliver `slack` Slack events (×4) and `telegram` Telegram updates (×2) across two
    replicas on one Redis store, then one marker message per platform to each replica."""
    started = time.monotonic()
    store = f"{redis_url}?prefix=chaos-replicas-{uuid.uuid4().hex[:8]}:"
    messages = _messages(seed, slack, telegram, 0)
    async with (
        open_emulator(seed=seed) as emulator,
        open_fake_slack() as fake_slack,
        open_fake_bot_api() as fake_telegram,
        httpx.AsyncClient(timeout=30) as http,
    ):

        def adapters() -> list[Any]:
            return [
                _slack_adapter(fake_slack),
                telegram_adapter(
                    fake_telegram.token,
                    fake_telegram.api_url,
                    mode="webhook",
                    secret_token=SECRET,
                    default_agent="echo",
                ),
            ]

        settings = bridge_settings(emulator, store=store)
        async with running(settings, adapters()) as a, running(settings, adapters()) as b:
            replicas = Replicas(a, b, emulator, fake_slack, fake_telegram, http)
            await _deliver_all(replicas, messages)
            with anyio.move_on_after(TURN_TIMEOUT):
                await _wait_answered(replicas, messages)
            # Markers, once per platform and replica: delivered after every redelivery was
            # acknowledged, so a redelivery that had slipped through would have shown up.
            markers = _messages(seed + 1, 2, 2, 1000)
            async with anyio.create_task_group() as group:
                for message, runtime in zip(markers, (a, b, a, b), strict=True):
                    group.start_soon(_marker, replicas, message, runtime)
            with anyio.move_on_after(TURN_TIMEOUT):
                await _wait_answered(replicas, markers)
            settled = await settle(a.store, emulator)
            ids = (a.conversations.replica_id, b.conversations.replica_id)
        invokes = accepted_invokes(emulator)
        for message in messages:
            message.finals = _answered(replicas, message)
    figures = Figures(
        "R3 redeliveries across 2 replicas",
        turns=len(messages),
        answered=sum(_shows_answer(replicas, m) for m in messages),
        duplicates=sum(max(0, m.finals - 1) + max(0, invokes[m.text] - 1) for m in messages),
        lost=sum(m.finals == 0 for m in messages),
        rejections=sum(len(m.statuses) - invokes[m.text] for m in messages),
        seconds=time.monotonic() - started,
    )
    figures.notes.append(
        f"{slack} Slack events x{1 + SLACK_RETRIES}, {telegram} Telegram updates x2; "
        "rejections = redeliveries acknowledged that started nothing"
    )
    return ReplicaReport(figures, messages, invokes, ids, settled)


async def _marker(replicas: Replicas, message: Delivered, runtime: Runtime) -> None:
    if message.platform == "slack":
        channel, ts = message.where
        event = {"type": "app_mention", "channel": channel, "user": "U1", "ts": ts}
        payload = event_callback({**event, "text": f"<@UBOT> {message.text}"})
        message.statuses.append((await replicas.events(runtime).event(payload)).status_code)
        return
    user = FakeUser(int(message.where[0]), "Marker")
    fake = replicas.telegram
    update = {"update_id": 60_000 + user.id, "message": user.says(fake, user.id, message.text)}
    message.statuses.append(await replicas.post_update(runtime, update))
