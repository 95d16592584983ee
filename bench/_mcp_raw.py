"""A raw JSON-RPC MCP client over httpx (no SDK): initialize once, then `tools/call` POSTs,
reading the answer as JSON or from the SSE stream, whichever the server sends. With it the
bench tells the client SDK's cost from the server's."""

from __future__ import annotations

import itertools
import json
from typing import Any

import httpx

PROTOCOL = "2025-06-18"
_ACCEPT = "application/json, text/event-stream"


class RawClient:
    """One MCP session (or none, against a stateless server) over one httpx client."""

    def __init__(self, http: httpx.AsyncClient, url: str) -> None:
        self._http = http
        self._url = url
        self._ids = itertools.count(1)
        self._headers = {"Accept": _ACCEPT, "MCP-Protocol-Version": PROTOCOL}

    async def open(self) -> None:
        """The handshake: `initialize`, then `notifications/initialized`."""
        params = {
            "protocolVersion": PROTOCOL,
            "capabilities": {},
            "clientInfo": {"name": "raw-bench", "version": "0"},
        }
        response = await self._post(
            {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": params}
        )
        session = response.headers.get("mcp-session-id")
        if session:
            self._headers["Mcp-Session-Id"] = session
        await self._post({"jsonrpc": "2.0", "method": "notifications/initialized"})

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """The `tools/call` result (raises on a JSON-RPC error)."""
        request_id = next(self._ids)
        message = {
            "jsonrpc": "2.0",
            "id": request_id,
            "method": "tools/call",
            "params": {"name": name, "arguments": arguments},
        }
        response = await self._post(message)
        answer = _answer(response, request_id)
        if "error" in answer:
            raise RuntimeError(f"tools/call {name}: {answer['error']}")
        result: dict[str, Any] = answer["result"]
        return result

    async def _post(self, message: dict[str, Any]) -> httpx.Response:
        response = await self._http.post(self._url, json=message, headers=self._headers)
        response.raise_for_status()
        return response


def _answer(response: httpx.Response, request_id: int) -> dict[str, Any]:
    if response.headers.get("content-type", "").startswith("application/json"):
        found: dict[str, Any] = response.json()
        return found
    for line in response.text.splitlines():
        if line.startswith("data:"):
            message: dict[str, Any] = json.loads(line[5:])
            if message.get("id") == request_id:
                return message
    raise RuntimeError(f"no answer to request {request_id} in the SSE stream")
