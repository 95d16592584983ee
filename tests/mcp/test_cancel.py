"""Cancellation everywhere: stateless calls, cancels that reach another replica, no answer after."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client

from bridge.emulator import Emulator
from bridge.testing import open_emulator
from tests.mcp.conftest import API_KEY, serving

pytestmark = pytest.mark.anyio

ACCEPT = {"accept": "application/json, text/event-stream"}
CALL = {
    "jsonrpc": "2.0",
    "id": 7,
    "method": "tools/call",
    "params": {
        "name": "slow",
        "arguments": {"message": "stop me"},
        "_meta": {"progressToken": "p7"},
    },
}
CANCEL = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 7}}


@pytest.fixture
async def patient() -> AsyncIterator[Emulator]:
    async with open_emulator(api_key=API_KEY, keepalive_interval=0.05, slow_silence=60.0) as emu:
        yield emu


async def _stream_until_cancelled(
    http: httpx.AsyncClient, url: str, headers: dict[str, str], cancel: Any
) -> list[dict[str, Any]]:
    """POST the slow call, cancel it at its first progress, return every message it got."""
    messages: list[dict[str, Any]] = []
    async with http.stream("POST", url, json=CALL, headers=headers) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if not line.startswith("data:") or not line[5:].strip():
                continue
            message = json.loads(line[5:])
            messages.append(message)
            if message.get("method") == "notifications/progress" and len(messages) == 1:
                await cancel()
    return messages


async def _stopped(emulator: Emulator) -> None:
    [task_id] = list(emulator.tasks)
    with anyio.fail_after(15):
        await emulator.wait_for_status(task_id, "stopped")


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_a_stateless_call_is_cancelled_with_its_upstream_task(
    patient: Emulator, mode: str
) -> None:
    started = anyio.Event()

    async def progress(value: float, total: float | None, message: str | None) -> None:
        started.set()

    async with (
        serving(patient, stateless=True, cancel_poll_interval=0.05) as served,
        Client(served.url, mode=mode) as client,
    ):
        async with anyio.create_task_group() as group:
            group.start_soon(client.call_tool, "slow", {"message": "never mind"}, None, progress)
            with anyio.fail_after(10):
                await started.wait()
            group.cancel_scope.cancel()
        await _stopped(patient)


async def test_a_cancel_sent_to_another_replica_stops_the_call_and_gets_no_answer(
    patient: Emulator, tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path / 'shared.db'}"
    headers = {**ACCEPT, "mcp-protocol-version": "2025-06-18"}
    async with (
        serving(patient, store=store, stateless=True, cancel_poll_interval=0.05) as one,
        serving(patient, store=store, stateless=True, cancel_poll_interval=0.05) as two,
        httpx.AsyncClient(timeout=30) as http,
    ):

        async def cancel_elsewhere() -> None:
            answer = await http.post(two.url, json=CANCEL, headers=headers)
            assert answer.status_code == 202

        with anyio.fail_after(20):
            messages = await _stream_until_cancelled(http, one.url, headers, cancel_elsewhere)
        await _stopped(patient)
    assert messages[0]["method"] == "notifications/progress"
    assert [m for m in messages if m.get("id") == 7] == []


async def test_a_cancelled_request_in_a_session_gets_no_response(patient: Emulator) -> None:
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "raw", "version": "1"},
        },
    }
    async with serving(patient) as served, httpx.AsyncClient(timeout=30) as http:
        opened = await http.post(served.url, json=initialize, headers=ACCEPT)
        headers = {
            **ACCEPT,
            "mcp-session-id": opened.headers["mcp-session-id"],
            "mcp-protocol-version": "2025-06-18",
        }
        ready = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        await http.post(served.url, json=ready, headers=headers)

        async def cancel_in_session() -> None:
            answer = await http.post(served.url, json=CANCEL, headers=headers)
            assert answer.status_code == 202

        with anyio.fail_after(20):
            messages = await _stream_until_cancelled(http, served.url, headers, cancel_in_session)
        await _stopped(patient)
    assert messages[0]["method"] == "notifications/progress"
    assert [m for m in messages if m.get("id") == 7] == []
