"""The scripted demo agents: event order, payload shapes, pauses, logins, keep-alives."""

from __future__ import annotations

import re
from typing import Any

import anyio
import httpx
import pytest

from bridge.emulator import AgentSpec, Emulator, TurnContext
from bridge.testing import open_emulator

from ._sse import frames, path, stream

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def assert_lifecycle(types: list[str], middle: list[str], status: str = "completed") -> None:
    """task_created → task_updated(executing) → `middle` (chunks collapsed) → task_finished."""
    collapsed = [t for i, t in enumerate(types) if t != "chunk" or types[i - 1] != "chunk"]
    assert collapsed == ["task_created", "task_updated", *middle, "task_finished"], types


async def test_echo_streams_the_input_verbatim_in_spec_order(
    emu: Emulator, client: httpx.AsyncClient
) -> None:
    transcript = await stream(client, "echo", "Say hello to the whole team", source="mcp")

    assert_lifecycle(transcript.types, ["chunk"])
    assert 1 < transcript.types.count("chunk") <= 3
    created, executing = transcript.events[0]["data"], transcript.events[1]["data"]
    assert (created["status"], created["result"], created["source"]) == ("pending", None, "mcp")
    assert executing["status"] == "executing" and executing["started_at"]
    final = transcript.final
    assert final["status"] == "completed"
    assert final["result"] == transcript.text == "Say hello to the whole team"
    assert final["finished_at"] and set(final["tokens"]) == {
        "completion_tokens",
        "prompt_tokens",
        "total_tokens",
    }
    for event in transcript.events:
        assert set(event) == {"type", "task_id", "organization_id", "time", "data"}
        assert event["task_id"] == final["id"]
        assert event["organization_id"] == emu.organization_id
        assert TIME.match(event["time"])


async def test_writer_writes_markdown_of_the_requested_size_in_the_requested_chunks(
    client: httpx.AsyncClient,
) -> None:
    transcript = await stream(client, "writer", "Write it. chars=12000 chunks=40")

    assert_lifecycle(transcript.types, ["chunk"])
    assert transcript.types.count("chunk") == 40
    result = transcript.final["result"]
    assert result == transcript.text and len(result) == 12000
    assert result.startswith("# ") and "\n## " in result
    assert "\n- " in result and "|---|" in result and "```python\n" in result
    assert result.count("```") % 2 == 0


async def test_writer_defaults_to_about_1500_characters(client: httpx.AsyncClient) -> None:
    transcript = await stream(client, "writer", "Tell me everything")

    assert len(transcript.final["result"]) == 1500
    assert transcript.final["result"] == transcript.text


async def test_writer_emits_as_many_chunks_as_asked_even_beyond_the_default_size(
    client: httpx.AsyncClient,
) -> None:
    many = await stream(client, "writer", "chunks=3000 seconds=0")
    paced = await stream(client, "writer", "chunks=5 seconds=0.05")

    assert many.types.count("chunk") == 3000 and all(many.text)
    assert many.final["result"] == many.text
    assert paced.types.count("chunk") == 5 and paced.final["result"] == paced.text


async def test_researcher_thinks_calls_a_tool_analyzes_then_answers(
    client: httpx.AsyncClient,
) -> None:
    transcript = await stream(client, "researcher", "solar panels")

    assert_lifecycle(
        transcript.types, ["think", "tool_call_request", "tool_call_result", "analyze", "chunk"]
    )
    by_type = {event["type"]: event["data"] for event in transcript.events}
    assert by_type["think"]["type"] == "think" and by_type["think"]["thought"]
    assert by_type["analyze"]["type"] == "analyze" and by_type["analyze"]["analysis"]
    request, result = by_type["tool_call_request"], by_type["tool_call_result"]
    for key in ("request_id", "operation_id", "tool_call_id", "tool_name", "payload"):
        assert result[key] == request[key]
    assert request["payload"] == {"bodyParams": {"query": "solar panels"}}
    assert result["is_error"] is False and result["result"]["hits"]
    assert "solar panels" in transcript.final["result"]
    full = (await client.get(f"/v1/tasks/{transcript.final['id']}/thread/full")).json()["root"]
    assert [message["role"] for message in full] == ["user", "tool", "assistant"]


async def test_slow_agent_sends_keepalives_during_its_silence(client: httpx.AsyncClient) -> None:
    with anyio.fail_after(5):
        async with client.stream("POST", path("slow"), json={"input": {"text": "x"}}) as response:
            sequence = [
                frame.event["type"] if frame.event else f":{frame.comment}"
                async for frame in frames(response)
            ]

    request, result = sequence.index("tool_call_request"), sequence.index("tool_call_result")
    silence = sequence[request + 1 : result]
    assert len(silence) >= 2 and set(silence) == {":keep-alive"}
    assert ":keep-alive" not in sequence[:request]
    assert sequence[-1] == "task_finished"


@pytest.mark.parametrize(("text", "status"), [("do it", "failed"), ("raise an error", "error")])
async def test_failing_agent_ends_failed_or_error_with_a_message(
    client: httpx.AsyncClient, text: str, status: str
) -> None:
    transcript = await stream(client, "failing", text)

    assert transcript.types[-1] == "task_finished"
    assert transcript.final["status"] == status
    assert transcript.final["result"]
    thread = (await client.get(f"/v1/tasks/{transcript.final['id']}/thread")).json()
    assert [message["role"] for message in thread] == ["user"]


async def test_approver_pauses_with_a_hitl_request_until_resumed(
    emu: Emulator, client: httpx.AsyncClient
) -> None:
    seen: list[dict[str, Any]] = []
    with anyio.fail_after(5):
        async with client.stream(
            "POST", path("approver"), json={"input": {"text": "deploy"}}
        ) as response:
            async for frame in frames(response):
                if frame.event is None:
                    continue
                seen.append(frame.event)
                if (
                    frame.event["type"] == "task_updated"
                    and frame.event["data"]["status"] == "paused"
                ):
                    task_id = frame.event["task_id"]
                    polled = (await client.get(f"/v1/tasks/{task_id}")).json()
                    assert polled["status"] == "paused" and polled["paused_at"]
                    emu.resume(task_id)

    paused = next(
        e["data"] for e in seen if e["type"] == "task_updated" and e["data"]["status"] == "paused"
    )
    assert set(paused["hitl_request"]) == {"operation_id", "content", "title"}
    assert [e["data"]["status"] for e in seen if e["type"] == "task_updated"] == [
        "executing",
        "paused",
        "executing",
    ]
    assert seen[-1]["data"]["status"] == "completed"
    assert seen[-1]["data"]["result"].startswith("Approved")


async def test_approver_rejected_over_the_control_api_completes_without_acting(
    emu: Emulator, client: httpx.AsyncClient
) -> None:
    task = (await client.post(path("approver", "async"), json={"input": {"text": "x"}})).json()
    with anyio.fail_after(5):
        await emu.wait_for_status(task["id"], "paused")

    resumed = await client.post(f"/_emulator/tasks/{task['id']}/resume", json={"approved": False})
    with anyio.fail_after(5):
        record = await emu.wait_for_status(task["id"], "completed")

    assert resumed.status_code == 200
    assert record.result is not None and record.result.startswith("Rejected")


async def test_a_paused_approver_can_be_stopped(emu: Emulator, client: httpx.AsyncClient) -> None:
    task = (await client.post(path("approver", "async"), json={"input": {"text": "x"}})).json()
    with anyio.fail_after(5):
        await emu.wait_for_status(task["id"], "paused")

    stopped = (await client.post(f"/v1/tasks/{task['id']}/stop")).json()
    not_running = await client.post(f"/_emulator/tasks/{task['id']}/resume")

    assert (stopped["status"], stopped["is_manually_stopped"], stopped["hitl_request"]) == (
        "stopped",
        True,
        None,
    )
    assert not_running.status_code == 409


async def test_sync_invoke_of_the_approver_blocks_until_resumed(
    emu: Emulator, client: httpx.AsyncClient
) -> None:
    async def approve_when_paused() -> None:
        await emu.wait_for_status("t-sync", "paused")
        emu.resume("t-sync")

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(approve_when_paused)
            response = await client.post(
                path("approver", "sync"), json={"input": {"text": "x"}, "id": "t-sync"}
            )

    assert response.json()["status"] == "completed"


async def test_signin_waits_for_the_login_then_reports_token_ready(
    client: httpx.AsyncClient,
) -> None:
    auth: list[dict[str, Any]] = []
    with anyio.fail_after(5):
        async with client.stream("POST", path("signin"), json={"input": {"text": "x"}}) as response:
            async for frame in frames(response):
                if frame.event is not None and frame.event["type"] == "auth_event":
                    auth.append(frame.event["data"])
                    if frame.event["data"]["type"] == "login_required":
                        opened = await client.get(frame.event["data"]["data"]["url"])
                        assert opened.status_code == 200
                if frame.event is not None and frame.event["type"] == "task_finished":
                    final = frame.event["data"]

    assert [event["type"] for event in auth] == ["login_required", "token_ready"]
    assert set(auth[0]["data"]) == {"url", "server_url", "server_name"}
    assert auth[1]["data"] == {"access_token": "REDACTED"}
    assert final["status"] == "completed"


async def test_signin_carries_on_after_the_login_timeout(client: httpx.AsyncClient) -> None:
    with anyio.fail_after(5):
        transcript = await stream(client, "signin", "x")

    assert_lifecycle(transcript.types, ["auth_event", "auth_event", "chunk"])
    assert transcript.final["status"] == "completed"


async def test_custom_scripts_run_as_extra_agents() -> None:
    async def shout(ctx: TurnContext) -> None:
        ctx.chunk(ctx.text.upper())
        ctx.result = "custom result"

    async with (
        open_emulator(extra_agents=[AgentSpec("shouter", "Shouts.", script=shout)]) as emu,
        httpx.AsyncClient(base_url=emu.base_url, headers={"x-api-key": emu.api_key}) as client,
    ):
        transcript = await stream(client, "shouter", "hey")

    assert transcript.text == "HEY"
    assert transcript.final["result"] == "custom result"
