"""The MCP server: the SDK's low-level `Server` with the bridge's tools.

One tool per exposed agent plus the run tools (`start_run`, `get_run`, `cancel_run`)
for clients that time out on long calls.
"""

from __future__ import annotations

import logging
import uuid
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version
from typing import Any

import anyio
import anyio.abc
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.server.session import ServerSession
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler, ToolsListChanged
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from bridge import errors
from bridge.chat import AgentDirectory
from bridge.conversations import Conversations, Message
from bridge.models import Agent
from bridge_mcp._cancel import DetachedCalls
from bridge_mcp._catalog import AGENT_INPUT_SCHEMA, AgentCatalog
from bridge_mcp._config import MCPConfig
from bridge_mcp._inbound import (
    AgentArguments,
    ArgumentsError,
    Caller,
    CancelRunArguments,
    RunArguments,
    StartRunArguments,
    caller_for,
    conversation_key,
    parse_arguments,
)
from bridge_mcp._outbound import error_result, follow, run_result, state_result
from bridge_mcp._records import RunRecords
from bridge_mcp._runs import AgentRun, RunRegistry
from bridge_mcp._tools import RUN_TOOL_SCHEMAS, RUN_TOOLS

__all__ = ["BridgeServer", "open_bridge_server"]

logger = logging.getLogger(__name__)

_MAX_WATCHED_SESSIONS = 10_000
_INSTRUCTIONS = (
    "Each tool is an agent of your organisation. Calls stream progress; pass a result's "
    "`conversation` to continue that thread. A call still running after a while returns "
    "status 'running' with a run id: follow it with get_run. For long work, use "
    "start_run / get_run / cancel_run."
)


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
        group: anyio.abc.TaskGroup,
        *,
        stdio: bool,
    ) -> None:
        self._conversations = conversations
        self.catalog = catalog
        self._runs = runs
        self._config = config
        self._group = group
        self.calls = DetachedCalls(conversations.store, poll_interval=config.cancel_poll_interval)
        self._records = RunRecords(conversations.store, conversations.client, ttl=config.run_ttl)
        self._stdio_session = f"stdio-{uuid.uuid4().hex}" if stdio else None
        self._bus = InMemorySubscriptionBus()
        self._watchers: dict[str, ServerSession] = {}
        self.server = _Server(
            "agent-bridge",
            version=version("agent-bridge-mcp"),
            title="Agent bridge",
            instructions=_INSTRUCTIONS,
            get_tool_input_schema=self._input_schema,
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_subscriptions_listen=ListenHandler(self._bus),
        )
        self.server.add_request_handler("logging/setLevel", types.SetLevelRequestParams, _set_level)
        catalog.on_change(self.tools_changed)
        self.note_problem()

    def note_problem(self) -> None:
        """Tell clients at initialize why there are no agents, if the platform refused us."""
        problem = self.catalog.problem
        self.server.instructions = (
            _INSTRUCTIONS
            if problem is None
            else f"Agents unavailable: {problem}.\n\n{_INSTRUCTIONS}"
        )

    async def _tell_problem(self, ctx: ServerRequestContext[Any, Any]) -> None:
        problem = self.catalog.problem
        if problem is None or ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
            return
        # Deprecated for 2026-07-28 only; the clients this goes to speak an earlier revision.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            sending = ctx.session.send_log_message("error", problem, "agent-bridge", ctx.request_id)
        await sending

    # -- tools/list and list changes ---------------------------------------------

    def _input_schema(self, name: str) -> dict[str, Any] | None:
        if name in self.catalog.agents:
            return AGENT_INPUT_SCHEMA
        return RUN_TOOL_SCHEMAS.get(name)

    async def _list_tools(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        if params is not None and params.cursor is not None:
            raise MCPError(types.INVALID_PARAMS, f"unknown cursor {params.cursor[:64]!r}")
        self._watch(ctx)
        self.note_problem()
        await self._tell_problem(ctx)
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
                logger.debug("dropping a session from tool-change notices: %r", exc)
                self._watchers.pop(name, None)

    # -- tools/call ----------------------------------------------------------------

    async def _call_tool(
        self, ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        """Raises MCPError (INVALID_PARAMS) for an unknown tool; arguments that do not fit the
        tool's schema are a tool error, which the model can see and correct (MCP 2025-11-25)."""
        name = params.name
        if name not in self.catalog.agents and name not in RUN_TOOL_SCHEMAS:
            if self.catalog.problem is not None:
                await self._tell_problem(ctx)
                return error_result(f"agent {name!r} is unavailable: {self.catalog.problem}")
            raise MCPError(types.INVALID_PARAMS, f"Unknown tool: {name}")
        caller = caller_for(ctx, self._config, self._stdio_session)
        try:
            if name == "start_run":
                return await self._start_run(
                    parse_arguments(StartRunArguments, params.arguments), caller
                )
            if name == "get_run":
                return await self._run_tool(
                    name, parse_arguments(RunArguments, params.arguments), caller
                )
            if name == "cancel_run":
                cancel = parse_arguments(CancelRunArguments, params.arguments)
                return await self._run_tool(name, RunArguments(run=cancel.run), caller)
            arguments = parse_arguments(AgentArguments, params.arguments)
        except ArgumentsError as exc:
            return error_result(str(exc))
        return await self._start(name, self.catalog.agents[name], arguments, caller, ctx=ctx)

    async def _start_run(self, start: StartRunArguments, caller: Caller) -> types.CallToolResult:
        found = self.catalog.find(start.agent)
        if found is None and self.catalog.problem is not None:
            return error_result(f"agent {start.agent!r} is unavailable: {self.catalog.problem}")
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
        run = await self._runs.start(
            agent,
            message,
            key,
            caller.principal,
            ephemeral=ephemeral,
            one_shot=ephemeral and not arguments.conversation,
        )
        if ctx is None:
            await self._records.share(run, tool, self._group)
            return run_result(run, tool)
        with self.calls.following(caller.principal, ctx.request_id, run):
            result = await follow(
                ctx, run, heartbeat=self._config.heartbeat_interval, budget=self._config.call_budget
            )
        if run.done.is_set():
            self._runs.forget(run)
        else:  # the call ends and the run goes on: get_run may follow it
            await self._records.share(run, tool, self._group)
        return result

    async def _run_tool(
        self, name: str, arguments: RunArguments, caller: Caller
    ) -> types.CallToolResult:
        run = self._runs.get(arguments.run, caller.principal)
        if run is None:
            return await self._remote_run_tool(name, arguments, caller)
        return await self._local_run_tool(name, arguments, run)

    async def _remote_run_tool(
        self, name: str, arguments: RunArguments, caller: Caller
    ) -> types.CallToolResult:
        """A run another replica (or an earlier process) started, through the store."""
        try:
            if name == "cancel_run":
                state = await self._records.cancel(arguments.run, caller.principal)
            else:
                state = await self._records.wait(arguments.run, caller.principal, arguments.wait)
        except errors.StoreError as exc:
            return error_result(f"could not read run {arguments.run!r}: {exc}")
        if state is None:
            return error_result(f"no run {arguments.run!r} (unknown, someone else's, or expired)")
        return state_result(state)

    async def _local_run_tool(
        self, name: str, arguments: RunArguments, run: AgentRun
    ) -> types.CallToolResult:
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
    conversations: Conversations, agents: AgentDirectory, config: MCPConfig, *, stdio: bool
) -> AsyncIterator[BridgeServer]:
    """The server with its catalog (over the runtime's agent directory) loaded and refreshed
    in the background every `refresh_interval`, and its runs' task group."""
    catalog = AgentCatalog(agents, config.agents)
    await catalog.refresh_or_note()
    async with (
        RunRegistry.open(conversations, ttl=config.run_ttl, max_runs=config.max_runs) as runs,
        anyio.create_task_group() as group,
    ):
        bridge = BridgeServer(conversations, catalog, runs, config, group, stdio=stdio)
        group.start_soon(catalog.watch, config.refresh_interval)
        group.start_soon(bridge.calls.watch)
        yield bridge
        group.cancel_scope.cancel()


async def _set_level(
    ctx: ServerRequestContext[Any, Any], params: types.SetLevelRequestParams
) -> types.EmptyResult:
    """`logging/setLevel`: accepted; the bridge sends only errors the user must act on."""
    return types.EmptyResult()
