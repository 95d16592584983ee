"""Fixtures: an emulator on 127.0.0.1:0 and a client pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bridge.client import AgentClient
from bridge.config import UpstreamConfig
from bridge.testing import open_emulator


@pytest.fixture
async def emulator() -> AsyncIterator[Any]:
    async with open_emulator(
        api_key="test-key", keepalive_interval=0.05, slow_silence=0.3, login_timeout=2.0
    ) as emu:
        yield emu


def fast_config(**changes: Any) -> UpstreamConfig:
    base = {
        "backoff_initial": 0.01,
        "backoff_max": 0.05,
        "poll_interval": 0.01,
        "poll_interval_max": 0.05,
        "idle_timeout": 5.0,
        "poll_timeout": 10.0,
    }
    return UpstreamConfig(**{**base, **changes})


@pytest.fixture
async def client(emulator: Any) -> AsyncIterator[AgentClient]:
    async with AgentClient(
        fast_config(), base_url=emulator.base_url, api_key="test-key"
    ) as agent_client:
        yield agent_client
