"""Conversation handles outlive processes: the sealing secret is kept in the store, and rotates."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
from mcp import Client
from pydantic import SecretStr

from bridge.client import AgentClient
from bridge.config import ConversationsConfig, UpstreamConfig
from bridge.conversations import Conversations
from bridge.emulator import Emulator
from bridge.errors import HandleError
from bridge.stores import MemoryStore
from tests.mcp.conftest import stdio_parameters

pytestmark = pytest.mark.anyio


async def test_a_handle_from_one_stdio_process_continues_in_the_next_on_the_same_sqlite_file(
    emulator: Emulator, tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path / 'state.db'}"
    async with Client(stdio_parameters(emulator, BRIDGE_STORE__URL=store), mode="legacy") as first:
        started = await first.call_tool("researcher", {"message": "bees"})
    handle = started.structured_content["conversation"]
    async with Client(stdio_parameters(emulator, BRIDGE_STORE__URL=store), mode="legacy") as second:
        continued = await second.call_tool(
            "researcher", {"message": "more bees", "conversation": handle}
        )
    assert started.is_error is False and continued.is_error is False
    assert continued.structured_content["task_id"] == started.structured_content["task_id"]


async def _conversations(store: MemoryStore, **config: object) -> Conversations:
    client = AgentClient(UpstreamConfig(base_url="http://127.0.0.1:9", api_key=SecretStr("k")))
    conversations = Conversations(client, store, ConversationsConfig.model_validate(config))
    await conversations.load_handle_secret()
    return conversations


async def test_replicas_on_one_store_agree_on_the_handle_secret() -> None:
    async with MemoryStore() as store:
        one = await _conversations(store)
        two = await _conversations(store)
        handle = one.seal("agent", "task", "ann")
        assert two.handles.open(handle, principal="ann").task_id == "task"
    async with MemoryStore() as elsewhere:
        with pytest.raises(HandleError):
            (await _conversations(elsewhere)).handles.open(handle)


async def test_a_configured_secret_wins_and_the_stored_one_stays_accepted_for_the_grace() -> None:
    async with MemoryStore() as store, MemoryStore() as other_store:
        before = await _conversations(store)
        old = before.seal("agent", "old-task")
        configured = await _conversations(store, handle_secret="configured")
        new = configured.seal("agent", "new-task")
        assert configured.handles.open(old).task_id == "old-task"
        with pytest.raises(HandleError):
            before.handles.open(new)
        same_secret = await _conversations(other_store, handle_secret="configured")
        assert same_secret.handles.open(new).task_id == "new-task"


async def test_previous_secrets_are_refused_once_the_rotation_grace_has_passed() -> None:
    async with MemoryStore() as store, MemoryStore() as late_store:
        handle = (await _conversations(store, handle_secret="old")).seal("agent", "task")
        rotated = await _conversations(store, handle_secret="new", previous_handle_secrets=["old"])
        assert rotated.handles.open(handle).task_id == "task"
        # The same rotation, first seen by a replica of this store eight days ago.
        digest = hashlib.sha256(b"new").hexdigest()[:32]
        await late_store.ensure_secret(
            f"handle-secret-since:{digest}", repr(time.time() - 8 * 86400)
        )
        late = await _conversations(
            late_store, handle_secret="new", previous_handle_secrets=["old"]
        )
        with pytest.raises(HandleError):
            late.handles.open(handle)
