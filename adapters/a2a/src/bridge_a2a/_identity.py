"""Who calls: bearer tokens → principal (as for MCP), the A2A call context, and task ownership.

Tasks and push configs are owned by (agent, principal): another caller, or the same
caller on another agent's endpoint, gets "not found".
"""

from __future__ import annotations

import hmac
import json

from a2a.auth.user import User as A2AUser
from a2a.extensions.common import HTTP_EXTENSION_HEADER, get_requested_extensions
from a2a.server.context import ServerCallContext
from a2a.server.routes.common import ServerCallContextBuilder
from a2a.utils.constants import VERSION_HEADER
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from bridge.adapters import BearerToken
from bridge.models import User
from bridge_a2a._config import A2AConfig

__all__ = [
    "BearerGate",
    "CallContextBuilder",
    "Principal",
    "call_context",
    "is_loopback",
    "owner_of",
    "upstream_user",
]

_LOCAL = "local"
_VERSION = VERSION_HEADER.lower()
_EXTENSIONS = HTTP_EXTENSION_HEADER.lower()


class Principal(A2AUser):
    """The authenticated caller, as the SDK's user."""

    def __init__(self, name: str) -> None:
        self._name = name

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def user_name(self) -> str:
        return self._name


def is_loopback(host: str) -> bool:
    return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")


def upstream_user(principal: str, config: A2AConfig) -> User:
    """The end user sent upstream for a principal (the configured user when unauthenticated)."""
    if principal == _LOCAL and config.user_email:
        return User(email=config.user_email, id=config.user_email)
    email = principal if "@" in principal else f"{principal}@localhost"
    return User(email=email, id=principal)


def owner_of(context: ServerCallContext) -> str:
    """The SDK stores' owner key: the agent and the principal."""
    return f"{context.state.get('agent', '')}|{context.user.user_name}"


def call_context(agent_id: str, principal: str) -> ServerCallContext:
    """A call context for the bridge's own writes (recovery) on behalf of `principal`."""
    return ServerCallContext(user=Principal(principal), state={"agent": agent_id})


class CallContextBuilder(ServerCallContextBuilder):
    """The SDK's call context for one agent's routes, from what `BearerGate` found."""

    def __init__(self, agent_id: str) -> None:
        self._agent_id = agent_id

    def build(self, request: Request) -> ServerCallContext:
        principal = request.scope.get("bridge.principal") or _LOCAL
        # Only the protocol headers: the state must never carry the caller's credentials.
        headers = {
            name: value
            for name, value in request.headers.items()
            if name in (_VERSION, _EXTENSIONS)
        }
        return ServerCallContext(
            user=Principal(principal),
            state={"agent": self._agent_id, "headers": headers},
            requested_extensions=get_requested_extensions(
                request.headers.getlist(HTTP_EXTENSION_HEADER)
            ),
        )


_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def _host_name(value: str) -> str:
    if value.startswith("["):
        return value[: value.find("]") + 1]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def _local_only(scope: Scope) -> bool:
    """Without tokens, only callers on this machine: a loopback Host and, from a browser,
    a loopback Origin (a page elsewhere cannot reach the agents by DNS rebinding)."""
    headers = dict(scope.get("headers", []))
    host = _host_name(headers.get(b"host", b"").decode("latin-1").lower())
    origin = headers.get(b"origin")
    if origin is not None:
        origin_host = _host_name(origin.decode("latin-1").lower().partition("://")[2])
        if origin_host not in _LOOPBACK_NAMES:
            return False
    return host in _LOOPBACK_NAMES


async def _refuse(send: Send, status: int, message: str) -> None:
    headers = [(b"content-type", b"application/json")]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="a2a"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": json.dumps({"error": message}).encode()})


class BearerGate:
    """ASGI middleware: with tokens configured, every call needs `Authorization: Bearer <token>`
    (401 otherwise); without tokens every call from this machine is the local principal."""

    def __init__(self, app: ASGIApp, tokens: list[BearerToken]) -> None:
        self._app = app
        self._tokens = [
            (entry.token.get_secret_value().encode(), entry.principal) for entry in tokens
        ]

    def _principal(self, scope: Scope) -> str | None:
        if not self._tokens:
            return _LOCAL
        header = ""
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                header = value.decode("latin-1")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        given = token.strip().encode()
        found = None
        for known, who in self._tokens:
            if hmac.compare_digest(known, given):
                found = who
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        if not self._tokens and not _local_only(scope):
            await _refuse(send, 403, "forbidden: without tokens, calls from this machine only")
            return
        principal = self._principal(scope)
        if principal is None:
            await _refuse(send, 401, "unauthorized: a valid bearer token is required")
            return
        scope["bridge.principal"] = principal
        await self._app(scope, receive, send)
