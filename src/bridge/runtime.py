"""The runtime seam: what the core hands every adapter, and how `bridge serve` runs them.

`open_runtime(settings)` builds the client (on an in-process emulator when no API key
is configured), the agent directory, the store, the conversations service, the output
scheduler, the file host and the HTTP app. `serve(settings)` runs the HTTP server and every enabled
adapter in one task group until cancelled.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.abc
from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bridge import errors
from bridge._private import replica_identity
from bridge.adapters import Adapter, RecoversTurns, enabled_adapters, preflight
from bridge.chat._directory import AgentDirectory
from bridge.client import AgentClient
from bridge.config import Settings
from bridge.conversations import Conversations
from bridge.files import FileHost
from bridge.http import Endpoint, HttpApp
from bridge.scheduler import OutputScheduler
from bridge.stores import SessionStore

if TYPE_CHECKING:
    from bridge.metrics import Metrics

__all__ = ["Runtime", "open_runtime", "serve"]

logger = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Everything an adapter may use. Adapters see `bridge`'s public API only."""

    settings: Settings
    client: AgentClient
    store: SessionStore
    conversations: Conversations
    scheduler: OutputScheduler
    http: HttpApp
    files: FileHost
    metrics: Metrics | None
    agents: AgentDirectory
    """The organisation's agents by name and id, one list for every surface."""
    #: This process's identity, the same after a restart (kept in the state directory):
    #: leases it held (the Telegram poller's) are its own again at once.
    replica_identity: str = ""
    started: dict[str, bool] = field(default_factory=dict)
    shutdown_scope: anyio.CancelScope | None = None
    readiness_checks: dict[str, Callable[[], Awaitable[bool]]] = field(default_factory=dict)

    async def drain(self) -> None:
        """Graceful shutdown: take no new turns, let running ones finish up to the drain
        timeout, then stop everything. Turns still running stay in the in-flight ledger,
        so another replica or the next start finishes and delivers them."""
        timeout = self.settings.conversations.drain_timeout
        with anyio.move_on_after(timeout) as waited:
            await self.conversations.drain()
        if waited.cancelled_caught:
            logger.warning("drain timeout (%gs): leaving unfinished turns to recovery", timeout)
        if self.shutdown_scope is not None:
            self.shutdown_scope.cancel()

    def add_readiness(self, name: str, check: Callable[[], Awaitable[bool]]) -> None:
        """Make `/readyz` also ask `check` (true: ready), reported under `name`."""
        self.readiness_checks[name] = check

    async def readiness(self) -> dict[str, str]:
        """What `/readyz` checks: upstream (with the key), store, every enabled adapter."""
        checks: dict[str, str] = {}
        try:
            await self.client.list_agents_page(per_page=1)
            checks["upstream"] = "ok"
        except errors.UpstreamError as exc:
            checks["upstream"] = f"failed: {type(exc).__name__}"
        try:
            await self.store.lock_owner("readiness-probe")
            checks["store"] = "ok"
        except errors.StoreError as exc:
            checks["store"] = f"failed: {exc}"
        for name, started in self.started.items():
            checks[f"adapter:{name}"] = "ok" if started else "not started"
        for name, check in self.readiness_checks.items():
            checks[name] = "ok" if await check() else "failed"
        return checks

    async def readyz(self, request: Request) -> Response:
        checks = await self.readiness()
        ready = all(value == "ok" for value in checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


@asynccontextmanager
async def open_client(settings: Settings) -> AsyncIterator[tuple[AgentClient, bool]]:
    """The upstream client; with no API key and no `base_url` of one's own, against an
    in-process emulator (its platform API only, on loopback, with a random key)."""
    async with AsyncExitStack() as stack:
        upstream = settings.upstream
        emulated = settings.uses_embedded_emulator
        if emulated:
            from bridge.emulator import load_state, open_emulator, save_state

            emulator = await stack.enter_async_context(
                open_emulator(api_key=secrets.token_urlsafe(24), control=False)
            )
            state = Path(settings.upstream.embedded_state)
            load_state(emulator, state)
            stack.callback(save_state, emulator, state)
            upstream = upstream.model_copy(
                update={"base_url": emulator.base_url, "api_key": SecretStr(emulator.api_key)}
            )
            logger.info(
                "no API key configured: using the embedded emulator at %s", emulator.base_url
            )
        client = await stack.enter_async_context(AgentClient(upstream))
        yield client, emulated


def _bearer_only(endpoint: Endpoint, token: SecretStr | None) -> Endpoint:
    """`endpoint` behind `Authorization: Bearer <http.ops_token>` when one is configured."""
    if token is None or not token.get_secret_value():
        return endpoint
    expected = f"Bearer {token.get_secret_value()}".encode()

    async def guarded(request: Request) -> Response:
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            return Response("unauthorized", status_code=401, headers={"WWW-Authenticate": "Bearer"})
        return await endpoint(request)

    return guarded


@asynccontextmanager
async def open_runtime(settings: Settings, *, metrics: bool = True) -> AsyncIterator[Runtime]:
    """Build the runtime; everything is closed on exit. `metrics=False` (a one-client
    process such as `bridge mcp` over stdio) leaves out /metrics and its collectors."""
    async with AsyncExitStack() as stack:
        client, _ = await stack.enter_async_context(open_client(settings))
        persistent = not settings.store.url.startswith("memory:")
        identity = stack.enter_context(
            replica_identity(settings.conversations.replica_file if persistent else None)
        )
        store = settings.store.open()
        await store.open()
        stack.push_async_callback(_close_store, store)
        scheduler = await stack.enter_async_context(OutputScheduler.open())
        http = HttpApp(settings.http)
        ops_token = settings.http.ops_token
        collectors = _metrics(http, scheduler, ops_token) if metrics else None
        conversations = Conversations(client, store, settings.conversations, metrics=collectors)
        await conversations.load_handle_secret()
        # A secret every replica on the store shares: any replica opens any file URL.
        file_secret = settings.conversations.handle_secret or SecretStr(
            await store.ensure_secret("file-links", secrets.token_urlsafe(32))
        )
        files = FileHost(settings.files, secret=file_secret)
        files.keep_uploads_in(store)
        http.add_route("/files/{token}", files.endpoint)
        runtime = Runtime(
            settings=settings,
            client=client,
            store=store,
            conversations=conversations,
            scheduler=scheduler,
            http=http,
            files=files,
            metrics=collectors,
            agents=AgentDirectory(client),
            replica_identity=identity,
        )
        http.add_route("/readyz", _bearer_only(runtime.readyz, ops_token))
        yield runtime


def _metrics(http: HttpApp, scheduler: OutputScheduler, token: SecretStr | None) -> Metrics:
    from bridge.metrics import Metrics  # Prometheus is loaded only where metrics are served

    metrics = Metrics()
    metrics.watch_scheduler(scheduler)
    http.add_route("/metrics", _bearer_only(metrics.endpoint, token))
    return metrics


async def _close_store(store: SessionStore) -> None:
    # Shielded: `serve` ends by cancellation, and a close cancelled at its first await
    # leaves the store's connections (Redis sockets, the SQLite handle) open.
    with anyio.move_on_after(10, shield=True):
        await store.close()


async def serve(
    settings: Settings,
    *,
    adapters: list[Adapter] | None = None,
    task_status: anyio.abc.TaskStatus[Runtime] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Run the HTTP server and every enabled adapter until cancelled or signalled.

    Raises:
        ConfigError: an adapter's table is invalid, or anything `preflight` refuses.
    """
    chosen = adapters if adapters is not None else enabled_adapters(settings)
    preflight(settings, chosen)
    async with open_runtime(settings) as runtime, anyio.create_task_group() as group:
        runtime.shutdown_scope = group.cancel_scope
        group.start_soon(_watch_signals, runtime)
        await group.start(runtime.conversations.heartbeat)
        for adapter in chosen:
            await group.start(_run_adapter, adapter, runtime)
        port = await group.start(runtime.http.serve, settings.http.host, settings.http.port)
        runtime.files.base_url = settings.http.public_url or runtime.http.base_url
        logger.info(
            "bridge serving on %s:%s with adapters: %s",
            settings.http.host,
            port,
            ", ".join(a.name for a in chosen) or "none",
        )
        task_status.started(runtime)


async def _run_adapter(
    adapter: Adapter, runtime: Runtime, *, task_status: anyio.abc.TaskStatus[None]
) -> None:
    """Run one adapter; once it has started, the recovery of its orphaned turns when it
    delivers them (`RecoversTurns`). Recovery ends with the adapter."""
    runtime.started[adapter.name] = False
    try:
        async with anyio.create_task_group() as group:

            async def run(*, task_status: anyio.abc.TaskStatus[None]) -> None:
                try:
                    await adapter.serve(runtime, task_status=task_status)
                finally:
                    group.cancel_scope.cancel()

            await group.start(run)
            if isinstance(adapter, RecoversTurns):
                await group.start(runtime.conversations.run_recovery, adapter.name, adapter.deliver)
            runtime.started[adapter.name] = True
            task_status.started()
    finally:
        runtime.started[adapter.name] = False


async def _watch_signals(runtime: Runtime) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            logger.info("received %s: draining, then shutting down", signal.Signals(signum).name)
            await runtime.drain()
            return
