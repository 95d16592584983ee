"""Fixtures of the Telegram adapter tests: the platform emulator, the fake Bot API, a bridge."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import anyio
import pytest
from bridge_telegram import TelegramAdapter, TelegramConfig
from bridge_telegram.testing import FakeBotAPI, FakeUser, open_fake_bot_api

from bridge.config import Settings, load_settings
from bridge.emulator import Emulator
from bridge.runtime import Runtime, serve
from bridge.testing import open_emulator

ALICE = FakeUser(42, "Alice", "alice", "Liddell")
BOB = FakeUser(43, "Bob", "bob")
GROUP = -1001
FORUM = -1002


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with open_emulator(api_key="test-key") as emu:
        yield emu


@pytest.fixture
async def fake() -> AsyncIterator[FakeBotAPI]:
    async with open_fake_bot_api() as api:
        api.chat(GROUP, "supergroup", title="Team")
        api.chat(FORUM, "supergroup", title="Forum", is_forum=True)
        yield api


def bridge_setup(
    emulator: Emulator,
    fake: FakeBotAPI,
    *,
    store: str = "memory://",
    conversations: dict[str, Any] | None = None,
    **telegram: Any,
) -> tuple[Settings, TelegramAdapter]:
    """Settings for a bridge with only the Telegram adapter, and that adapter."""
    table: dict[str, Any] = {
        "bot_token": fake.token,
        "api_url": fake.api_url,
        "default_agent": "echo",
        "poll_timeout": 5,
        **telegram,
    }
    settings = load_settings(
        overrides={
            "upstream": {"base_url": emulator.base_url, "api_key": emulator.api_key},
            "store": {"url": store},
            "conversations": conversations or {},
            "http": {"port": 0},
            "adapters": {"telegram": table},
        },
        environ={},
    )
    return settings, TelegramAdapter(TelegramConfig.model_validate(table))


@asynccontextmanager
async def running_bridge(
    emulator: Emulator, fake: FakeBotAPI, **options: Any
) -> AsyncIterator[tuple[Runtime, TelegramAdapter]]:
    """Serve a bridge with only the Telegram adapter until the block exits."""
    settings, adapter = bridge_setup(emulator, fake, **options)
    async with anyio.create_task_group() as group:
        runtime: Runtime = await group.start(partial(serve, settings, adapters=[adapter]))
        try:
            yield runtime, adapter
        finally:
            group.cancel_scope.cancel()
