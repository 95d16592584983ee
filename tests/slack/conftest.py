"""Fixtures: the platform emulator, the fake Slack Web API, and the bridge serving Slack."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.abc
import pytest
from bridge_slack import SlackAdapter, SlackConfig
from bridge_slack.testing import EventSender, FakeSlack, event_callback, open_fake_slack

from bridge.config import load_settings
from bridge.emulator import Emulator
from bridge.runtime import Runtime, serve
from bridge.testing import open_emulator

API_KEY = "test-key"


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with open_emulator(api_key=API_KEY, keepalive_interval=0.05, login_timeout=5.0) as emu:
        yield emu


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with open_fake_slack() as fake:
        yield fake


@dataclass
class Bridge:
    runtime: Runtime
    config: SlackConfig
    events: EventSender

    async def mention(
        self,
        text: str,
        *,
        channel: str = "C1",
        user: str = "U1",
        ts: str | None = None,
        thread_ts: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Post an app_mention event; returns the event sent."""
        event = {
            "type": "app_mention",
            "channel": channel,
            "user": user,
            "text": f"<@UBOT> {text}",
            "ts": ts or next_ts(),
            **extra,
        }
        if thread_ts:
            event["thread_ts"] = thread_ts
        response = await self.events.event(event_callback(event))
        assert response.status_code == 200
        return event


_counter = iter(range(1, 1_000_000))


def final_texts(slack: FakeSlack, channel: str, thread_ts: str) -> list[str]:
    """What readers see in a thread's finished (not streaming) replies."""
    return [m.visible_text for m in slack.replies(channel, thread_ts) if not m.streaming]


def next_ts() -> str:
    return f"1700000000.{next(_counter):06d}"


def slack_settings(emulator: Emulator, store_url: str = "memory://") -> Any:
    return load_settings(
        None,
        overrides={
            "upstream": {"base_url": emulator.base_url, "api_key": API_KEY, "idle_timeout": 10.0},
            "store": {"url": store_url},
            "http": {"host": "127.0.0.1", "port": 0},
            "conversations": {"recovery_interval": 0.2},
        },
        environ={},
    )


@asynccontextmanager
async def serving(
    emulator: Emulator, slack: FakeSlack | None, *, store_url: str = "memory://", **options: Any
) -> AsyncIterator[Bridge]:
    """`bridge serve` with only the Slack adapter, against a Slack Web API and the emulator."""
    base: dict[str, Any] = {"default_agent": "echo"}
    if slack is not None:
        base |= {
            "bot_token": slack.bot_token,
            "signing_secret": slack.signing_secret,
            "app_token": slack.app_token,
            "api_url": slack.api_url,
            # the fake serves files from 127.0.0.1 over http: allowed here, explicitly
            "file_hosts": ["127.0.0.1"],
            "allow_private_file_hosts": True,
        }
    config = SlackConfig.model_validate(base | options)
    settings = slack_settings(emulator, store_url)

    async def run(*, task_status: anyio.abc.TaskStatus[Runtime]) -> None:
        await serve(settings, adapters=[SlackAdapter(config)], task_status=task_status)

    async with anyio.create_task_group() as group:
        runtime = await group.start(run)
        secret = config.signing_secret.get_secret_value() if config.signing_secret else ""
        sender = EventSender(f"{runtime.http.base_url}/slack/events", secret)
        yield Bridge(runtime, config, sender)
        group.cancel_scope.cancel()


@pytest.fixture
async def bridge(emulator: Emulator, slack: FakeSlack) -> AsyncIterator[Bridge]:
    async with serving(emulator, slack) as served:
        yield served
