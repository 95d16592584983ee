"""Tool list changes, run tools, sign-in and approval, stateless and 2026-07-28 clients, HTTP guards."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import mcp_types as types
import pytest
from bridge_mcp import MCPAdapter
from mcp import Client
from mcp.client.session import ClientRequestContext, IncomingMessage
from mcp.client.streamable_http import streamable_http_client

from bridge.emulator import Emulator
from bridge.errors import ConfigError
from bridge.runtime import open_runtime
from tests.mcp.conftest import bridge_settings, serving

pytestmark = pytest.mark.anyio


async def test_the_tool_list_follows_the_agent_list_and_clients_are_notified(
    emulator: Emulator,
) -> None:
    changed = anyio.Event()

    async def on_message(message: IncomingMessage) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            changed.set()

    async with (
        serving(emulator, refresh_interval=0.05) as served,
        Client(served.url, mode="legacy", message_handler=on_message) as client,
    ):
        before = {tool.name for tool in (await client.list_tools()).tools}
        emulator.add_agent("Release Notes!")
        with anyio.fail_after(10):
            await changed.wait()
        after = {tool.name for tool in (await client.list_tools()).tools}
    assert "release_notes_" not in before
    assert after - before == {"release_notes_"}


async def test_2026_clients_hear_of_tool_list_changes_through_listen(emulator: Emulator) -> None:
    async with (
        serving(emulator, refresh_interval=0.05) as served,
        Client(served.url, mode="2026-07-28") as client,
    ):
        async with client.listen(tools_list_changed=True) as subscription:
            emulator.remove_agent("writer")
            with anyio.fail_after(10):
                async for _event in subscription:
                    break
        names = {tool.name for tool in (await client.list_tools()).tools}
    assert "writer" not in names


async def test_run_tools_start_follow_and_cancel_a_run(bridge: Any, emulator: Emulator) -> None:
    async with Client(bridge.url, mode="legacy") as client:
        started = await client.call_tool(
            "start_run", {"agent": "echo", "message": "in the background"}
        )
        run = started.structured_content["run"]
        state = await client.call_tool("get_run", {"run": run, "wait": 10})
        slow = await client.call_tool("start_run", {"agent": "slow", "message": "long one"})
        cancelled = await client.call_tool("cancel_run", {"run": slow.structured_content["run"]})
        unknown = await client.call_tool("get_run", {"run": "run_nope"})
    assert state.structured_content["status"] == "completed"
    assert state.structured_content["answer"] == "in the background"
    assert state.structured_content["conversation"].startswith("cv1.")
    assert cancelled.structured_content["status"] == "stopped"
    assert unknown.is_error is True


async def test_sign_in_is_shown_in_the_result_when_the_client_cannot_elicit(
    bridge: Any, emulator: Emulator
) -> None:
    async with Client(bridge.url, mode="legacy") as client:
        result = await client.call_tool("signin", {"message": "read my calendar"})
        run = result.structured_content["run"]
        [task_id] = list(emulator.tasks)
        emulator.complete_login(task_id)
        state = await client.call_tool("get_run", {"run": run, "wait": 10})
    assert result.is_error is False
    assert result.structured_content["status"] == "login_required"
    assert f"/_emulator/login/{task_id}" in result.structured_content["note"]
    assert state.structured_content["answer"].endswith("Done: read my calendar")


async def test_sign_in_uses_url_elicitation_when_the_client_supports_it(
    bridge: Any, emulator: Emulator
) -> None:
    asked: list[types.ElicitRequestParams] = []

    async def elicit(
        context: ClientRequestContext, params: types.ElicitRequestParams
    ) -> types.ElicitResult:
        asked.append(params)
        [task_id] = list(emulator.tasks)
        emulator.complete_login(task_id)
        return types.ElicitResult(action="accept")

    async with Client(bridge.url, mode="legacy", elicitation_callback=elicit) as client:
        result = await client.call_tool("signin", {"message": "read my mail"})
    assert result.is_error is False
    assert result.structured_content["answer"].endswith("Done: read my mail")
    assert len(asked) == 1
    assert isinstance(asked[0], types.ElicitRequestURLParams)
    assert "/_emulator/login/" in asked[0].url


async def test_a_paused_task_shows_its_approval_request(bridge: Any, emulator: Emulator) -> None:
    async with Client(bridge.url, mode="legacy") as client:
        result = await client.call_tool("approver", {"message": "deploy"})
        [task_id] = list(emulator.tasks)
        emulator.resume(task_id, approved=True)
        run = result.structured_content["run"]
        state = await client.call_tool("get_run", {"run": run, "wait": 10})
    assert result.structured_content["status"] == "paused"
    assert "Approval required" in result.structured_content["note"]
    assert state.structured_content["answer"] == "Approved. Done: deploy"


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_stateless_calls_continue_only_through_handles(emulator: Emulator, mode: str) -> None:
    async with serving(emulator, stateless=True) as served, Client(served.url, mode=mode) as client:
        first = await client.call_tool("echo", {"message": "one"})
        fresh = await client.call_tool("echo", {"message": "two"})
        handle = first.structured_content["conversation"]
        continued = await client.call_tool("echo", {"message": "three", "conversation": handle})
    assert fresh.structured_content["task_id"] != first.structured_content["task_id"]
    assert continued.structured_content["task_id"] == first.structured_content["task_id"]


async def test_2026_clients_call_agents_with_progress(bridge: Any) -> None:
    messages: list[str] = []

    async def progress(value: float, total: float | None, message: str | None) -> None:
        messages.append(message or "")

    async with Client(bridge.url, mode="2026-07-28") as client:
        result = await client.call_tool(
            "researcher", {"message": "owls"}, progress_callback=progress
        )
    assert result.is_error is False
    assert messages[:2] == ["thinking: Plan", "calling tool search_web"]


async def test_bearer_tokens_are_required_and_name_the_user(emulator: Emulator) -> None:
    tokens = [{"principal": "alice@example.com", "token": "s3cret-token"}]
    async with serving(emulator, tokens=tokens) as served:
        async with httpx.AsyncClient() as http:
            refused = await http.post(
                served.url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"}
            )
            wrong = await http.post(
                served.url,
                json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                headers={"authorization": "Bearer nope"},
            )
        auth = httpx.AsyncClient(headers={"authorization": "Bearer s3cret-token"})
        transport = streamable_http_client(served.url, http_client=auth)
        async with auth, Client(transport, mode="legacy") as client:
            result = await client.call_tool("echo", {"message": "it is me"})
    assert refused.status_code == 401
    assert wrong.status_code == 401
    assert result.is_error is False
    assert emulator.invokes(agent="echo")[-1].json["input"]["user"]["email"] == "alice@example.com"


async def test_requests_from_foreign_origins_are_refused(bridge: Any) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    headers = {"accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient() as http:
        evil = await http.post(
            bridge.url, json=body, headers={**headers, "origin": "http://evil.example"}
        )
        rebound = await http.post(
            bridge.url, json=body, headers={**headers, "host": "evil.example"}
        )
    assert evil.status_code == 403
    assert rebound.status_code == 421


async def test_binding_beyond_loopback_without_tokens_refuses_to_start(emulator: Emulator) -> None:
    settings = bridge_settings(emulator, host="0.0.0.0")
    async with open_runtime(settings) as runtime:
        with pytest.raises(ConfigError) as refused:
            await MCPAdapter().serve(runtime)
    assert refused.value.key == "adapters.mcp.tokens"
