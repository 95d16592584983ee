"""The MCP server: the SDK's low-level `Server` with the bridge's tools, and its HTTP app.

One tool per exposed agent plus the run tools (`start_run`, `get_run`, `cancel_run`)
for clients that time out on long calls.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version
from typing import Any

import anyio
import mcp_types as types
from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.auth.middleware.bearer_auth import BearerAuthBackend, RequireAuthMiddleware
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.server.session import ServerSession
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler, ToolsListChanged
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.types import ASGIApp

from bridge import errors
from bridge.conversations import Conversations, Message
from bridge.models import Agent
from bridge_mcp._catalog import AGENT_INPUT_SCHEMA, AgentCatalog
from bridge_mcp._config import MCPConfig
from bridge_mcp._inbound import (
    AgentArguments,
    ArgumentsError,
    Caller,
    RunArguments,
    StartRunArguments,
    TokenTable,
    caller_for,
    conversation_key,
    parse_arguments,
)
from bridge_mcp._outbound import error_result, follow, run_result
from bridge_mcp._runs import RunRegistry
from bridge_mcp._tools import RUN_TOOL_SCHEMAS, RUN_TOOLS

__all__ = ["BridgeServer", "http_app", "open_bridge_server"]

logger = logging.getLogger(__name__)

_MAX_WATCHED_SESSIONS = 10_000


class _Server(Server[Any]):
    """The SDK server, announcing `tools.listChanged` on every transport."""

    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        return super().create_initialization_options(
            notification_options or NotificationOptions(tools_changed=True),
            experimental_capabilities,
            extensions,
        )


class BridgeServer:
    """The bridge's tools behind one SDK `Server`, for stdio or HTTP."""

    def __init__(
        self,
        conversations: Conversations,
        catalog: AgentCatalog,
        runs: RunRegistry,
        config: MCPConfig,
        *,
        stdio: bool,
    ) -> None:
        self._conversations = conversations
        self.catalog = catalog
        self._runs = runs
        self._config = config
        self._stdio_session = f"stdio-{uuid.uuid4().hex}" if stdio else None
        self._bus = InMemorySubscriptionBus()
        self._watchers: dict[str, ServerSession] = {}
        self.server = _Server(
            "agent-bridge",
            version=version("agent-bridge-mcp"),
            title="Agent bridge",
            instructions="Each tool is an agent of your organisation. Calls stream progress; "
            "pass a result's `conversation` to continue that thread. For long work, use "
            "start_run / get_run / cancel_run.",
            get_tool_input_schema=self._input_schema,
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_subscriptions_listen=ListenHandler(self._bus),
        )
        catalog.on_change(self.tools_changed)

    # -- tools/list and list changes ---------------------------------------------

    def _input_schema(self, name: str) -> dict[str, Any] | None:
        if name in self.catalog.agents:
            return AGENT_INPUT_SCHEMA
        return RUN_TOOL_SCHEMAS.get(name)

    async def _list_tools(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        self._watch(ctx)
        return types.ListToolsResult(tools=[*self.catalog.tools, *RUN_TOOLS])

    def _watch(self, ctx: ServerRequestContext[Any, Any]) -> None:
        """Remember a handshake-era session that listed the tools, to tell it of changes."""
        if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
            return  # 2026-07-28 clients subscribe with subscriptions/listen
        session = caller_for(ctx, self._config, self._stdio_session).session
        if session is not None and (
            session in self._watchers or len(self._watchers) < _MAX_WATCHED_SESSIONS
        ):
            self._watchers[session] = ctx.session

    async def tools_changed(self) -> None:
        await self._bus.publish(ToolsListChanged())
        for name, session in list(self._watchers.items()):
            try:
                await session.send_tool_list_changed()
            except Exception as exc:  # a gone session fails in transport-specific ways
                logger.debug("dropping session %s from tool-change notices: %r", name, exc)
                self._watchers.pop(name, None)

    # -- tools/call ----------------------------------------------------------------

    async def _call_tool(
        self, ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        """Raises MCPError (INVALID_PARAMS) for an unknown tool; arguments that do not fit the
        tool's schema are a tool error, which the model can see and correct (MCP 2025-11-25)."""
        name = params.name
        if name not in self.catalog.agents and name not in RUN_TOOL_SCHEMAS:
            raise MCPError(types.INVALID_PARAMS, f"Unknown tool: {name}")
        caller = caller_for(ctx, self._config, self._stdio_session)
        try:
            if name == "start_run":
                return await self._start_run(
                    parse_arguments(StartRunArguments, params.arguments), caller
                )
            if name in ("get_run", "cancel_run"):
                return await self._run_tool(
                    name, parse_arguments(RunArguments, params.arguments), caller
                )
            arguments = parse_arguments(AgentArguments, params.arguments)
        except ArgumentsError as exc:
            return error_result(str(exc))
        return await self._start(name, self.catalog.agents[name], arguments, caller, ctx=ctx)

    async def _start_run(self, start: StartRunArguments, caller: Caller) -> types.CallToolResult:
        found = self.catalog.find(start.agent)
        if found is None:
            return error_result(f"no agent named {start.agent!r}; see tools/list for the agents")
        return await self._start(found[0], found[1], start, caller, ctx=None)

    async def _start(
        self,
        tool: str,
        agent: Agent,
        arguments: AgentArguments,
        caller: Caller,
        *,
        ctx: ServerRequestContext[Any, Any] | None,
    ) -> types.CallToolResult:
        """Start a run; with `ctx`, follow it to its end, else return its id at once."""
        key, ephemeral = conversation_key(caller, agent.id)
        if arguments.conversation:
            try:
                sealed = self._conversations.handles.open(
                    arguments.conversation, principal=caller.principal
                )
                if sealed.agent_id != agent.id:
                    raise errors.HandleError("this conversation belongs to another agent")
                await self._conversations.continue_with(
                    key, arguments.conversation, caller.principal
                )
            except errors.ConversationError as exc:
                return error_result(f"cannot continue that conversation: {exc}")
        message = Message(
            text=arguments.message,
            user=caller.user,
            principal=caller.principal,
            files=tuple(arguments.files),
        )
        run = await self._runs.start(agent, message, key, caller.principal, ephemeral=ephemeral)
        if ctx is None:
            return run_result(run, tool)
        return await follow(ctx, run, heartbeat=self._config.heartbeat_interval)

    async def _run_tool(
        self, name: str, arguments: RunArguments, caller: Caller
    ) -> types.CallToolResult:
        run = self._runs.get(arguments.run, caller.principal)
        if run is None:
            return error_result(
                f"no run {arguments.run!r} here (runs are kept for a while by the bridge that started them)"
            )
        tool = next(
            (t for t, a in self.catalog.agents.items() if a.id == run.agent.id), run.agent.name
        )
        if name == "cancel_run" and not run.done.is_set():
            run.cancel()
            with anyio.move_on_after(15):
                await run.done.wait()
        elif arguments.wait:
            with anyio.move_on_after(arguments.wait):
                await run.done.wait()
        return run_result(run, tool)


@asynccontextmanager
async def open_bridge_server(
    conversations: Conversations, config: MCPConfig, *, stdio: bool
) -> AsyncIterator[BridgeServer]:
    """The server with its catalog loaded and refreshed in the background, and its runs' task group."""
    catalog = AgentCatalog(conversations.client, config.agents)
    try:
        await catalog.refresh()
    except errors.UpstreamError as exc:
        logger.warning("could not list the agents yet (%s); will retry", exc)
    async with (
        RunRegistry.open(conversations, ttl=config.run_ttl, max_runs=config.max_runs) as runs,
        anyio.create_task_group() as group,
    ):
        bridge = BridgeServer(conversations, catalog, runs, config, stdio=stdio)
        group.start_soon(catalog.watch, config.refresh_interval)
        yield bridge
        group.cancel_scope.cancel()


_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def is_loopback(host: str) -> bool:
    return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")


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


def http_app(
    bridge: BridgeServer, config: MCPConfig, bind_host: str
) -> tuple[ASGIApp, StreamableHTTPSessionManager]:
    """The streamable HTTP endpoint (run the manager with `async with manager.run()`).

    With tokens configured, requests need `Authorization: Bearer <token>` (401 otherwise)."""
    manager = StreamableHTTPSessionManager(
        app=bridge.server,
        stateless=config.stateless,
        json_response=config.json_response,
        security_settings=security_settings(config, bind_host),
    )
    app: ASGIApp = StreamableHTTPASGIApp(manager)
    if config.tokens:
        app = RequireAuthMiddleware(app, required_scopes=[])
        app = AuthContextMiddleware(app)
        app = AuthenticationMiddleware(app, backend=BearerAuthBackend(TokenTable(config.tokens)))
    return app, manager
