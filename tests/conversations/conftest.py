"""Fixtures: the conversations service on the emulator and a store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import SecretStr

from bridge.client import AgentClient
from bridge.config import ConversationsConfig
from bridge.conversations import Conversations
from bridge.stores import MemoryStore, SessionStore
from bridge.testing import open_emulator
from tests.client.conftest import fast_config


@pytest.fixture
async def emulator() -> AsyncIterator[Any]:
    async with open_emulator(api_key="test-key", keepalive_interval=0.05, slow_silence=0.5) as emu:
        yield emu


@pytest.fixture
async def client(emulator: Any) -> AsyncIterator[AgentClient]:
    async with AgentClient(fast_config(), base_url=emulator.base_url, api_key="test-key") as c:
        yield c


@pytest.fixture
async def store() -> AsyncIterator[SessionStore]:
    memory = MemoryStore("memory://")
    await memory.open()
    yield memory
    await memory.close()


def conversations_config(**changes: Any) -> ConversationsConfig:
    base: dict[str, Any] = {"handle_secret": SecretStr("s3cret"), "lock_lease": 2.0}
    return ConversationsConfig(**{**base, **changes})


@pytest.fixture
def conversations(client: AgentClient, store: SessionStore) -> Conversations:
    return Conversations(client, store, conversations_config(), replica_id="replica-a")
