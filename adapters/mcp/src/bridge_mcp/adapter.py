"""`MCPAdapter`: streamable HTTP at `/mcp` on the bridge's server, and `bridge mcp` (stdio or HTTP)."""

from __future__ import annotations

import argparse
import logging
from typing import Any, ClassVar, cast

import anyio
import anyio.abc
from mcp.server.stdio import stdio_server

from bridge.adapters import AdapterConfig, CommandContext
from bridge.config import validate_adapter_config
from bridge.runtime import Runtime, open_runtime, serve
from bridge_mcp._config import MCPConfig
from bridge_mcp._http import http_app
from bridge_mcp._server import open_bridge_server

__all__ = ["MCPAdapter"]

logger = logging.getLogger(__name__)


class MCPAdapter:
    """Every exposed agent as an MCP tool."""

    name: ClassVar[str] = "mcp"
    config_model: ClassVar[type[AdapterConfig]] = MCPConfig

    def __init__(self, config: MCPConfig | None = None) -> None:
        self.config = config or MCPConfig()

    async def serve(
        self,
        runtime: Runtime,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Mount the streamable HTTP endpoint and serve until cancelled.

        Raises:
            ConfigError: reachable beyond loopback (bound elsewhere, a public name in
                `allowed_hosts` or `[http] public_url`) without bearer tokens.
        """
        host = runtime.settings.http.host
        self.config.check_settings(runtime.settings)
        async with open_bridge_server(
            runtime.conversations, runtime.agents, self.config, stdio=False
        ) as bridge:
            app, manager = http_app(bridge.server, self.config, host, bridge.calls)
            runtime.http.add_route(
                self.config.path, cast(Any, app), methods=["GET", "POST", "DELETE"]
            )
            async with manager.run():
                task_status.started()
                await anyio.sleep_forever()

    def describe(self, base_url: str) -> str:
        """One line of `bridge serve`'s start-up summary."""
        auth = "bearer tokens" if self.config.tokens else "no tokens: loopback only"
        return f"MCP at {base_url}{self.config.path} ({auth})"

    @staticmethod
    async def command(ctx: CommandContext, argv: list[str]) -> int:
        """`bridge mcp [--transport stdio|http] [--host H] [--port P] [--stateless]`, and
        `bridge mcp install CLIENT [--print]`."""
        if argv[:1] == ["install"]:
            from bridge_mcp._install import install_command  # not needed to serve

            return install_command(ctx, argv[1:])
        parser = argparse.ArgumentParser(
            prog="bridge mcp", description="Serve the agents as MCP tools."
        )
        parser.add_argument("--transport", choices=("stdio", "http"), default="stdio")
        parser.add_argument("--host", help="HTTP bind address (default: [http] host, 127.0.0.1)")
        parser.add_argument("--port", type=int, help="HTTP port (default: [http] port)")
        parser.add_argument("--stateless", action="store_true", help="HTTP without sessions")
        try:
            args = parser.parse_args(argv)
        except SystemExit as exit_:
            return int(exit_.code or 0)
        config = validate_adapter_config(ctx.settings, "mcp", MCPConfig)
        if args.stateless:
            config = config.model_copy(update={"stateless": True})
        if args.transport == "stdio":
            return await _serve_stdio(ctx, config)
        http: dict[str, Any] = {}
        if args.host:
            http["host"] = args.host
        if args.port is not None:
            http["port"] = args.port
        settings = ctx.settings.model_copy(
            update={"http": ctx.settings.http.model_copy(update=http)}
        )
        async with anyio.create_task_group() as group:
            runtime: Runtime = await group.start(_serve_http, settings, MCPAdapter(config))
            ctx.err.write(f"MCP endpoint: {runtime.http.base_url}{config.path}\n")
            ctx.err.flush()
        return 0


async def _serve_http(
    settings: Any, adapter: MCPAdapter, *, task_status: anyio.abc.TaskStatus[Runtime]
) -> None:
    await serve(settings, adapters=[adapter], task_status=task_status)


async def _serve_stdio(ctx: CommandContext, config: MCPConfig) -> int:
    """Serve one client over stdin/stdout until it closes stdin. Nothing else goes to stdout."""
    async with (
        open_runtime(ctx.settings, metrics=False) as runtime,
        anyio.create_task_group() as group,
    ):
        await group.start(runtime.conversations.heartbeat)
        async with (
            open_bridge_server(runtime.conversations, runtime.agents, config, stdio=True) as bridge,
            stdio_server() as (read_stream, write_stream),
        ):
            await bridge.server.run(
                read_stream, write_stream, bridge.server.create_initialization_options()
            )
        group.cancel_scope.cancel()
    return 0
