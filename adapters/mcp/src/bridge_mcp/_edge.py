"""The wire details of the MCP endpoint the SDK leaves to the server.

An ASGI layer in front of the SDK's session manager: a clear 400 for an unknown
`MCP-Protocol-Version`, JSON-RPC batches for 2025-03-26 sessions, no new session id
on a refused request, no response for a cancelled request, and cancellation of
calls that have no session (stateless, 2026-07-28) through `DetachedCalls`.
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any

import anyio
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp_types.version import KNOWN_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS
from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bridge_mcp._cancel import DetachedCalls
from bridge_mcp._config import MCPConfig

__all__ = ["MCPEdge", "scope_principal"]

logger = logging.getLogger(__name__)

_MAX_BODY = 4 * 1024 * 1024
_CANCELLED = b'"code":-32800'
_BATCH_VERSIONS = (None, "2025-03-26")


def scope_principal(scope: Scope, config: MCPConfig) -> str:
    """Who sent the request: the bearer token's principal, else the configured user."""
    user = scope.get("user")
    if isinstance(user, AuthenticatedUser):
        return user.access_token.subject or user.access_token.client_id
    return config.user_id or config.user_email or "local"


def _error(status: int, code: int, message: str) -> Response:
    body = {"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed


class _Outbound:
    """Sends the response, minus a new session id on a refusal and minus the
    `-32800 Request cancelled` answer the SDK writes for a cancelled request."""

    def __init__(self, send: Send, *, strip_session: bool) -> None:
        self._send = send
        self._strip_session = strip_session
        self._held: Message | None = None
        self.started = False
        self.finished = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            headers = list(message.get("headers", []))
            if self._strip_session and message["status"] >= 400:
                headers = [(k, v) for k, v in headers if k.lower() != b"mcp-session-id"]
            message = {**message, "headers": headers}
            if Headers(raw=headers).get("content-type", "").startswith("application/json"):
                self._held = message  # sent with the body, which may turn out to be a cancel
                return
            await self._send(message)
            return
        if message["type"] == "http.response.body":
            await self._body(message)
            return
        await self._send(message)

    async def _body(self, message: Message) -> None:
        body: bytes = message.get("body", b"")
        self.finished = not message.get("more_body", False)
        if self._held is not None:
            held, self._held = self._held, None
            if _CANCELLED in body:
                await self._send({"type": "http.response.start", "status": 202, "headers": []})
                await self._send({"type": "http.response.body", "body": b""})
                self.finished = True
                return
            await self._send(held)
        elif _CANCELLED in body:
            message = {**message, "body": b""}
        await self._send(message)

    async def finish(self) -> None:
        """End a response cut short by a cancel (no JSON-RPC answer is sent)."""
        if not self.started:
            await self._send({"type": "http.response.start", "status": 202, "headers": []})
        elif self._held is not None:
            await self._send(self._held)
        if not self.finished:
            await self._send({"type": "http.response.body", "body": b"", "more_body": False})
            self.finished = True


class MCPEdge:
    """ASGI middleware between authentication and the SDK's session manager."""

    def __init__(self, app: ASGIApp, config: MCPConfig, calls: DetachedCalls) -> None:
        self._app = app
        self._config = config
        self._calls = calls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        version = headers.get("mcp-protocol-version")
        if version is not None and version not in KNOWN_PROTOCOL_VERSIONS:
            supported = ", ".join(KNOWN_PROTOCOL_VERSIONS)
            refusal = (
                f"unsupported MCP-Protocol-Version header {version[:40]!r}; supported: {supported}"
            )
            await _error(400, -32600, refusal)(scope, receive, send)
            return
        outbound = _Outbound(send, strip_session="mcp-session-id" not in headers)
        length = headers.get("content-length", "")
        detached = self._config.stateless or version in MODERN_PROTOCOL_VERSIONS
        if (
            scope["method"] != "POST"
            or not length.isdigit()
            or int(length) > _MAX_BODY
            # A session's request that cannot be a batch goes to the SDK unread.
            or not (detached or version in _BATCH_VERSIONS)
        ):
            await self._app(scope, receive, outbound)
            return
        body = await _read(receive)
        message: Any = None
        with contextlib.suppress(ValueError, RecursionError):
            message = json.loads(body)
        if isinstance(message, list) and message and version in _BATCH_VERSIONS:
            await self._batch(scope, receive, send, message)
        elif isinstance(message, dict) and detached and _is_cancel(message):
            params = message.get("params") or {}
            await self._calls.cancel(scope_principal(scope, self._config), params.get("requestId"))
            await Response(status_code=202)(scope, receive, send)
        elif isinstance(message, dict) and detached and message.get("method") == "tools/call":
            principal = scope_principal(scope, self._config)

            async def call() -> None:
                await self._app(scope, _replay(body, receive), outbound)

            if await self._calls.serve(principal, message.get("id"), call):
                await outbound.finish()
        else:
            await self._app(scope, _replay(body, receive), outbound)

    async def _batch(self, scope: Scope, receive: Receive, send: Send, messages: list[Any]) -> None:
        """A 2025-03-26 batch: each message through the SDK, the answers as one JSON array."""
        answers: list[Any] = [None] * len(messages)

        async def one(index: int, message: Any) -> None:
            captured = _Captured()
            body = json.dumps(message).encode()
            await self._app(scope, _replay(body, receive), captured)
            answers[index] = captured.responses()

        async with anyio.create_task_group() as group:
            for index, message in enumerate(messages):
                group.start_soon(one, index, message)
        responses = [response for found in answers for response in found]
        if not responses:
            await Response(status_code=202)(scope, receive, send)
            return
        await JSONResponse(responses)(scope, receive, send)


def _is_cancel(message: dict[str, Any]) -> bool:
    return message.get("method") == "notifications/cancelled" and "id" not in message


async def _read(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


class _Captured:
    """A response captured whole, read back as the JSON-RPC responses it carried."""

    def __init__(self) -> None:
        self.status = 0
        self.body = bytearray()

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")

    def responses(self) -> list[Any]:
        text = self.body.decode("utf-8", "replace")
        candidates: list[Any] = []
        if text.lstrip().startswith("{"):
            candidates.append(json.loads(text))
        else:
            for line in text.splitlines():
                if line.startswith("data:") and line[5:].strip():
                    candidates.append(json.loads(line[5:]))
        return [
            found
            for found in candidates
            if isinstance(found, dict) and ("result" in found or "error" in found)
        ]
