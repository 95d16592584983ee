"""The endpoint to the letter of the spec: batches, cursors, session and version errors, schemas."""

from __future__ import annotations

import json
from typing import Any

import httpx
import jsonschema
import pytest
from mcp import Client

from bridge.emulator import Emulator
from tests.mcp.conftest import Bridge, serving

pytestmark = pytest.mark.anyio

ACCEPT = {"accept": "application/json, text/event-stream"}


def _initialize(version: str) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": version,
            "capabilities": {},
            "clientInfo": {"name": "raw", "version": "1"},
        },
    }


def _messages(response: httpx.Response) -> list[Any]:
    """The JSON-RPC messages of a JSON or SSE response."""
    if response.headers.get("content-type", "").startswith("application/json"):
        return [response.json()]
    return [
        json.loads(line[5:])
        for line in response.text.splitlines()
        if line.startswith("data:") and line[5:].strip()
    ]


async def _open_session(http: httpx.AsyncClient, url: str, version: str) -> dict[str, str]:
    """A raw, initialized session; returns the headers its requests carry."""
    opened = await http.post(url, json=_initialize(version), headers=ACCEPT)
    assert opened.status_code == 200
    headers = {**ACCEPT, "mcp-session-id": opened.headers["mcp-session-id"]}
    if version != "2025-03-26":  # that revision has no protocol version header
        headers["mcp-protocol-version"] = version
    ready = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert (await http.post(url, json=ready, headers=headers)).status_code == 202
    return headers


@pytest.mark.parametrize("json_response", [False, True])
async def test_a_2025_03_26_session_accepts_batches(
    emulator: Emulator, json_response: bool
) -> None:
    batch = [
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {"jsonrpc": "2.0", "method": "notifications/roots/list_changed"},
        {"jsonrpc": "2.0", "id": 3, "method": "ping"},
        {
            "jsonrpc": "2.0",
            "id": 4,
            "method": "tools/call",
            "params": {"name": "echo", "arguments": {"message": "in a batch"}},
        },
    ]
    async with (
        serving(emulator, json_response=json_response) as served,
        httpx.AsyncClient(timeout=30) as http,
    ):
        headers = await _open_session(http, served.url, "2025-03-26")
        answered = await http.post(served.url, json=batch, headers=headers)
        only_notes = await http.post(served.url, json=[batch[1]], headers=headers)
    assert answered.status_code == 200
    responses = {message["id"]: message for message in answered.json()}
    assert set(responses) == {2, 3, 4}
    assert "echo" in {tool["name"] for tool in responses[2]["result"]["tools"]}
    assert responses[3]["result"] == {}
    assert responses[4]["result"]["structuredContent"]["answer"] == "in a batch"
    assert only_notes.status_code == 202


async def test_an_unknown_cursor_is_invalid_params(bridge: Bridge) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        headers = await _open_session(http, bridge.url, "2025-06-18")
        listed = await http.post(
            bridge.url,
            json={"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"cursor": "zz"}},
            headers=headers,
        )
    [answer] = [message for message in _messages(listed) if message.get("id") == 2]
    assert answer["error"]["code"] == -32602
    assert "result" not in answer


async def test_a_request_without_its_session_gets_400_and_no_new_session(bridge: Bridge) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        refused = await http.post(
            bridge.url,
            json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
            headers={**ACCEPT, "mcp-protocol-version": "2025-06-18"},
        )
    assert refused.status_code == 400
    assert "mcp-session-id" not in refused.headers


async def test_a_bad_protocol_version_header_is_named_in_the_error(bridge: Bridge) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        refused = await http.post(
            bridge.url,
            json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
            headers={**ACCEPT, "mcp-protocol-version": "1999-01-01"},
        )
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == -32600
    assert "MCP-Protocol-Version" in error["message"]
    assert "1999-01-01" in error["message"]


SAMPLES: dict[str, list[dict[str, Any]]] = {
    "echo": [
        {"message": ""},
        {"message": "x"},
        {},
        {"message": 5},
        {"message": "x", "colour": "red"},
        {"message": "x", "files": ["https://example.com/a.txt"]},
        {"message": "x", "files": "https://example.com/a.txt"},
    ],
    "start_run": [
        {"agent": "echo", "message": "x"},
        {"agent": "", "message": "x"},
        {"agent": "echo", "message": ""},
        {"message": "x"},
    ],
    "get_run": [
        {"run": "run_x"},
        {"run": ""},
        {"run": "run_x", "wait": 51},
        {"run": "r", "wait": 0},
    ],
    "cancel_run": [{"run": "run_x"}, {"run": ""}, {"run": "run_x", "wait": 1}],
}


async def test_the_input_schemas_and_the_validation_agree(bridge: Bridge) -> None:
    verdicts: list[tuple[str, dict[str, Any], bool, bool]] = []
    async with Client(bridge.url, mode="legacy") as client:
        schemas = {tool.name: tool.input_schema for tool in (await client.list_tools()).tools}
        for tool, samples in SAMPLES.items():
            for arguments in samples:
                fits = jsonschema.Draft202012Validator(schemas[tool]).is_valid(arguments)
                result = await client.call_tool(tool, arguments)
                text = result.content[0].text if result.content else ""
                accepted = "invalid arguments" not in text
                verdicts.append((tool, arguments, fits, accepted))
    assert [v for v in verdicts if v[2] != v[3]] == []
    assert {v[2] for v in verdicts} == {True, False}


async def test_structured_results_come_as_json_text_with_the_answer_once(bridge: Bridge) -> None:
    async with Client(bridge.url, mode="legacy") as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        result = await client.call_tool("echo", {"message": "say this once"})
    assert len(result.content) == 1
    assert json.loads(result.content[0].text) == result.structured_content
    assert result.content[0].text.count("say this once") == 1
    jsonschema.validate(result.structured_content, tools["echo"].output_schema)
