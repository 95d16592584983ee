"""Attacks on the MCP endpoint over real sockets: other users' sessions, session floods, open doors."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import httpx
import pytest
from bridge_mcp import MCPAdapter, MCPConfig
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from bridge.emulator import Emulator
from bridge.errors import ConfigError
from bridge.runtime import open_runtime
from tests.mcp.conftest import bridge_settings, serving

pytestmark = pytest.mark.anyio

TOKENS = [
    {"principal": "alice@example.com", "token": "alice-s3cret-token"},
    {"principal": "bob@example.com", "token": "bob-s3cret-token"},
]
ACCEPT = {"accept": "application/json, text/event-stream"}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "1"},
    },
}


def _auth(token: str, **headers: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(headers={"authorization": f"Bearer {token}", **headers}, timeout=30)


async def _call(url: str, http: httpx.AsyncClient, mode: str, text: str) -> dict[str, Any]:
    async with Client(streamable_http_client(url, http_client=http), mode=mode) as client:
        result = await client.call_tool("echo", {"message": text})
    assert result.is_error is False
    return dict(result.structured_content or {})


async def _alice_session(url: str) -> tuple[str, dict[str, Any]]:
    """Alice's stateful session id and the result of her first call in it."""
    seen: list[str] = []

    async def remember(response: httpx.Response) -> None:
        if "mcp-session-id" in response.headers:
            seen.append(response.headers["mcp-session-id"])

    alice = _auth("alice-s3cret-token")
    alice.event_hooks["response"].append(remember)
    async with (
        alice,
        Client(streamable_http_client(url, http_client=alice), mode="legacy") as client,
    ):
        first = await client.call_tool("echo", {"message": "alice's private plan"})
        assert seen
        return seen[-1], dict(first.structured_content or {})


async def test_another_user_with_a_stolen_session_id_cannot_continue_the_thread(
    emulator: Emulator,
) -> None:
    async with serving(emulator, tokens=TOKENS) as served:
        session, alice = await _alice_session(served.url)
        async with _auth("bob-s3cret-token", **{"mcp-session-id": session}) as bob:
            modern = await _call(served.url, bob, "2026-07-28", "bob on the 2026 path")
            legacy = await bob.post(
                served.url,
                json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
                headers={**ACCEPT, "mcp-protocol-version": "2025-06-18"},
            )
        async with _auth("alice-s3cret-token", **{"mcp-session-id": session}) as again:
            alice_modern = await _call(served.url, again, "2026-07-28", "no session on 2026")
    assert modern["task_id"] != alice["task_id"]
    # Only her own first turn (which chose the thread id) ever named her thread.
    [own] = emulator.invokes(thread_id=alice["task_id"])
    assert own.body["input"]["text"] == "alice's private plan"
    assert legacy.status_code == 404
    # Without a session the transport validated, only a handle continues a thread.
    assert alice_modern["task_id"] != alice["task_id"]


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_a_shared_session_header_in_stateless_mode_joins_no_conversation(
    emulator: Emulator, mode: str
) -> None:
    header = {"mcp-session-id": "everyone-sends-this"}
    async with serving(emulator, tokens=TOKENS, stateless=True) as served:
        async with _auth("alice-s3cret-token", **header) as alice:
            first = await _call(served.url, alice, mode, "alice one")
        async with _auth("bob-s3cret-token", **header) as bob:
            other = await _call(served.url, bob, mode, "bob one")
        async with _auth("alice-s3cret-token", **header) as alice:
            second = await _call(served.url, alice, mode, "alice two")
    assert len({first["task_id"], other["task_id"], second["task_id"]}) == 3


async def test_one_token_holder_cannot_take_every_session(emulator: Emulator) -> None:
    async with (
        serving(emulator, tokens=TOKENS, max_sessions_per_principal=2) as served,
        _auth("alice-s3cret-token") as alice,
        _auth("bob-s3cret-token") as bob,
    ):
        opened = [
            (await alice.post(served.url, json=INITIALIZE, headers=ACCEPT)).status_code
            for _ in range(3)
        ]
        bobs = await bob.post(served.url, json=INITIALIZE, headers=ACCEPT)
        session = bobs.headers["mcp-session-id"]
        closed = await bob.delete(
            served.url,
            headers={"mcp-session-id": session, "mcp-protocol-version": "2025-06-18"},
        )
    assert opened == [200, 200, 503]
    assert bobs.status_code == 200
    assert closed.status_code == 200


async def test_session_ids_are_not_logged_at_info(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with serving(emulator, tokens=TOKENS) as served:
        session, _ = await _alice_session(served.url)
        async with _auth("bob-s3cret-token") as bob:
            stolen = await bob.post(
                served.url,
                json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
                headers={**ACCEPT, "mcp-session-id": session},
            )
    assert stolen.status_code == 404
    server_side = ("bridge", "bridge_mcp", "mcp.server", "uvicorn", "starlette")
    loud = [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.INFO and r.name.startswith(server_side)
    ]
    assert loud, "the scenario logged nothing at INFO: the check would prove nothing"
    assert not [line for line in loud if session in line]


@pytest.mark.parametrize(
    ("http", "mcp"),
    [
        ({"host": "127.0.0.1", "public_url": "https://agents.example.com"}, {}),
        ({"host": "127.0.0.1"}, {"allowed_hosts": ["agents.example.com"]}),
        ({"host": "127.0.0.1"}, {"allowed_hosts": ["agents.example.com:443"]}),
        ({"host": "0.0.0.0"}, {}),
    ],
)
async def test_reachable_beyond_loopback_without_tokens_refuses_to_start(
    emulator: Emulator, http: dict[str, Any], mcp: dict[str, Any]
) -> None:
    settings = bridge_settings(emulator, **http)
    async with open_runtime(settings) as runtime:
        with pytest.raises(ConfigError) as refused:
            await MCPAdapter(MCPConfig.model_validate(mcp)).serve(runtime)
    assert refused.value.key == "adapters.mcp.tokens"


async def test_behind_a_proxy_requests_need_a_token_and_near_misses_are_refused(
    emulator: Emulator,
) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    headers = {**ACCEPT, "host": "agents.example.com"}
    async with (
        serving(emulator, tokens=TOKENS, allowed_hosts=["agents.example.com"]) as served,
        httpx.AsyncClient() as http,
    ):
        statuses = [
            (await http.post(served.url, json=body, headers={**headers, **auth})).status_code
            for auth in (
                {},
                {"authorization": "Bearer alice-s3cret-toke"},
                {"authorization": "Bearer alice-s3cret-tokenX"},
                {"authorization": "Bearer ALICE-S3CRET-TOKEN"},
            )
        ]
        good = await http.post(
            served.url,
            json=INITIALIZE,
            headers={**headers, "authorization": "Bearer alice-s3cret-token"},
        )
    assert statuses == [401, 401, 401, 401]
    assert good.status_code == 200


async def test_idle_sessions_expire_after_the_configured_time(emulator: Emulator) -> None:
    ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
    async with (
        serving(emulator, tokens=TOKENS, session_idle_timeout=0.2) as served,
        _auth("alice-s3cret-token") as alice,
    ):
        opened = await alice.post(served.url, json=INITIALIZE, headers=ACCEPT)
        headers = {
            **ACCEPT,
            "mcp-session-id": opened.headers["mcp-session-id"],
            "mcp-protocol-version": "2025-06-18",
        }
        alive = await alice.post(served.url, json=ping, headers=headers)
        status = alive.status_code
        with anyio.fail_after(10):
            while status != 404:
                # Expiry is measured from the last request: each probe waits it out first.
                await anyio.sleep(0.5)
                status = (await alice.post(served.url, json=ping, headers=headers)).status_code
    assert opened.status_code == 200
    assert alive.status_code == 200
