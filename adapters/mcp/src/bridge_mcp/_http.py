"""The MCP endpoint over streamable HTTP: who may reach it, how many sessions each may hold.

Tokens are required whenever the endpoint can be reached under a non-loopback name;
sessions are capped per principal and expire when idle; session ids stay out of the
logs (they are bearer-like: whoever holds one with its token continues its threads).
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.auth.middleware.bearer_auth import (
    AuthorizationContext,
    BearerAuthBackend,
    RequireAuthMiddleware,
)
from mcp.server.lowlevel.server import Server
from mcp.server.streamable_http import StreamableHTTPServerTransport
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.types import ASGIApp

from bridge_mcp._cancel import DetachedCalls
from bridge_mcp._config import MCPConfig
from bridge_mcp._edge import MCPEdge
from bridge_mcp._inbound import TokenTable, principal_digest

__all__ = ["http_app", "is_loopback", "security_settings", "why_tokens_are_needed"]

logger = logging.getLogger(__name__)

_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
_SESSION_ID = re.compile(r"\b[0-9a-f]{32}\b")


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    return host in ("localhost", "::1") or host.startswith("127.")


def _host_of(name: str) -> str:
    """The host part of an `allowed_hosts` entry (`name`, `name:port`, `[v6]:port`)."""
    if name.startswith("["):
        return name[1:].split("]", 1)[0]
    return name.rsplit(":", 1)[0] if name.count(":") == 1 else name


def why_tokens_are_needed(bind_host: str, config: MCPConfig, public_url: str | None) -> str | None:
    """Why the endpoint can be reached from beyond this machine, if it can."""
    if not is_loopback(bind_host):
        return f"[http] host is {bind_host}"
    for name in config.allowed_hosts:
        if not is_loopback(_host_of(name)):
            return f"[adapters.mcp] allowed_hosts names {name}"
    if public_url:
        host = urlsplit(public_url).hostname or public_url
        if not is_loopback(host):
            return f"[http] public_url is {public_url}"
    return None


def security_settings(config: MCPConfig, bind_host: str) -> TransportSecuritySettings:
    """Host and Origin checks against DNS rebinding: loopback names, the bound host, and
    what the config adds."""
    hosts = [f"{host}:*" for host in _LOOPBACK_HOSTS] + list(_LOOPBACK_HOSTS)
    if bind_host not in ("0.0.0.0", "::") and not is_loopback(bind_host):
        hosts += [bind_host, f"{bind_host}:*"]
    for host in config.allowed_hosts:
        hosts += [host] if ":" in host else [host, f"{host}:*"]
    origins = [f"http://{host}:*" for host in _LOOPBACK_HOSTS] + [
        f"http://{h}" for h in _LOOPBACK_HOSTS
    ]
    origins += config.allowed_origins
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )


class _HideSessionIds(logging.Filter):
    """Session ids in the SDK's log lines become a short digest."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        hidden = _SESSION_ID.sub(lambda m: f"<session {principal_digest(m.group())[:8]}>", message)
        if hidden != message:
            record.msg, record.args = hidden, None
        return True


def hide_session_ids() -> None:
    for name in ("mcp.server.streamable_http_manager", "mcp.server.streamable_http"):
        sdk_logger = logging.getLogger(name)
        if not any(isinstance(f, _HideSessionIds) for f in sdk_logger.filters):
            sdk_logger.addFilter(_HideSessionIds())


class _SessionManager(StreamableHTTPSessionManager):
    """The SDK's session manager with a cap on the sessions one principal holds open."""

    def __init__(self, app: Server[Any], *, per_principal: int, **options: Any) -> None:
        super().__init__(app, **options)
        self._per_principal = per_principal
        self._open: Counter[str] = Counter()
        self._principal_of: dict[str, str] = {}

    def _admit_session(
        self, requestor: AuthorizationContext | None
    ) -> StreamableHTTPServerTransport | None:
        principal = "" if requestor is None else requestor["subject"] or requestor["client_id"]
        if self._open[principal] >= self._per_principal:
            logger.warning(
                "refusing a new MCP session: principal %s already holds %d (max_sessions_per_principal)",
                principal_digest(principal)[:8],
                self._open[principal],
            )
            return None
        transport = super()._admit_session(requestor)
        if transport is not None and transport.mcp_session_id is not None:
            self._open[principal] += 1
            self._principal_of[transport.mcp_session_id] = principal
        return transport

    async def _discard_session(
        self, session_id: str, transport: StreamableHTTPServerTransport
    ) -> None:
        principal = self._principal_of.pop(session_id, None)
        if principal is not None:
            self._open[principal] -= 1
            if self._open[principal] <= 0:
                del self._open[principal]
        await super()._discard_session(session_id, transport)


def http_app(
    server: Server[Any], config: MCPConfig, bind_host: str, calls: DetachedCalls
) -> tuple[ASGIApp, StreamableHTTPSessionManager]:
    """The streamable HTTP endpoint (run the manager with `async with manager.run()`).

    With tokens configured, requests need `Authorization: Bearer <token>` (401 otherwise)."""
    hide_session_ids()
    manager = _SessionManager(
        server,
        per_principal=config.max_sessions_per_principal,
        stateless=config.stateless,
        json_response=config.json_response,
        security_settings=security_settings(config, bind_host),
        session_idle_timeout=config.session_idle_timeout,
        max_sessions=config.max_sessions,
    )
    app: ASGIApp = MCPEdge(StreamableHTTPASGIApp(manager), config, calls)
    if config.tokens:
        app = RequireAuthMiddleware(app, required_scopes=[])
        app = AuthContextMiddleware(app)
        app = AuthenticationMiddleware(app, backend=BearerAuthBackend(TokenTable(config.tokens)))
    return app, manager
