"""Fixtures of the attack tests: `bridge serve` with Slack (HTTP events), Telegram (webhook)
and MCP over HTTP, against the emulator and the fake Slack and Bot APIs, plus raw sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import anyio
import anyio.abc
import pytest
from bridge_mcp import MCPAdapter, MCPConfig
from bridge_slack import SlackAdapter, SlackConfig
from bridge_slack.testing import EventSender, FakeSlack, open_fake_slack
from bridge_telegram import TelegramAdapter, TelegramConfig
from bridge_telegram.testing import FakeBotAPI, open_fake_bot_api

from bridge.adapters import Adapter
from bridge.config import load_settings
from bridge.emulator import Emulator
from bridge.runtime import Runtime, serve
from bridge.testing import open_emulator

API_KEY = "test-key"
WEBHOOK_SECRET = "s3cret-webhook"


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with open_emulator(api_key=API_KEY) as emu:
        yield emu


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with open_fake_slack() as fake:
        yield fake


@pytest.fixture
async def telegram() -> AsyncIterator[FakeBotAPI]:
    async with open_fake_bot_api() as fake:
        yield fake


@dataclass
class Edge:
    """A served bridge and what tests need to attack it."""

    runtime: Runtime
    slack: FakeSlack
    telegram: FakeBotAPI
    events: EventSender

    @property
    def port(self) -> int:
        assert self.runtime.http.port is not None
        return self.runtime.http.port

    @property
    def url(self) -> str:
        return self.runtime.http.base_url


def slack_table(slack: FakeSlack, **options: Any) -> dict[str, Any]:
    return {
        "bot_token": slack.bot_token,
        "signing_secret": slack.signing_secret,
        "api_url": slack.api_url,
        "default_agent": "echo",
        "file_hosts": ["127.0.0.1"],
        "allow_private_file_hosts": True,  # the fake serves files on 127.0.0.1 over http
        **options,
    }


@asynccontextmanager
async def serving(
    emulator: Emulator,
    slack: FakeSlack,
    telegram: FakeBotAPI,
    *,
    http: dict[str, Any] | None = None,
    files: dict[str, Any] | None = None,
    slack_options: dict[str, Any] | None = None,
    telegram_options: dict[str, Any] | None = None,
    conversations: dict[str, Any] | None = None,
) -> AsyncIterator[Edge]:
    """`bridge serve` with the Slack, Telegram (webhook) and MCP adapters."""
    tg_table = {
        "bot_token": telegram.token,
        "api_url": telegram.api_url,
        "default_agent": "echo",
        "mode": "webhook",
        "secret_token": WEBHOOK_SECRET,
        **(telegram_options or {}),
    }
    settings = load_settings(
        overrides={
            "upstream": {"base_url": emulator.base_url, "api_key": API_KEY},
            "store": {"url": "memory://"},
            "http": {"host": "127.0.0.1", "port": 0, **(http or {})},
            "files": files or {},
            "conversations": {"recovery_interval": 0.2, **(conversations or {})},
        },
        environ={},
    )
    table = slack_table(slack, **(slack_options or {}))
    adapters: list[Adapter] = [
        SlackAdapter(SlackConfig.model_validate(table)),
        TelegramAdapter(TelegramConfig.model_validate(tg_table)),
        MCPAdapter(MCPConfig()),
    ]
    async with anyio.create_task_group() as group:
        runtime: Runtime = await group.start(partial(serve, settings, adapters=adapters))
        events = EventSender(f"{runtime.http.base_url}/slack/events", slack.signing_secret)
        try:
            yield Edge(runtime, slack, telegram, events)
        finally:
            group.cancel_scope.cancel()


async def read_to_eof(stream: anyio.abc.ByteStream, *, limit: int = 1 << 20) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    while len(data) < limit:
        try:
            data += await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError, ConnectionResetError):
            break
    return data


def status_of(raw: bytes) -> int:
    """The status code of the first response in `raw` (0 when there is none)."""
    head = raw.split(b"\r\n", 1)[0].split()
    return int(head[1]) if len(head) > 1 and head[1].isdigit() else 0
