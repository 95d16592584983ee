"""`A2AAdapter`: every exposed agent as an Agent2Agent agent on the bridge's HTTP server."""

from __future__ import annotations

import logging
from typing import ClassVar

import anyio
import anyio.abc
import httpx
from a2a.server.tasks import BasePushNotificationSender
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import create_async_engine

from bridge import errors
from bridge.adapters import AdapterConfig, Check
from bridge.config import Settings
from bridge.models import Task
from bridge.runtime import Runtime
from bridge.stores import InFlightTurn
from bridge_a2a._config import A2AConfig
from bridge_a2a._executor import Shared
from bridge_a2a._identity import is_loopback
from bridge_a2a._server import A2AServer, webhook_policy
from bridge_a2a._tasks import open_task_backend, task_store_url
from bridge_a2a._writer import TaskWriter

__all__ = ["A2AAdapter"]

logger = logging.getLogger(__name__)


def _exposure(config: A2AConfig, host: str) -> Check:
    if config.tokens:
        return Check("a2a.auth", True, f"{len(config.tokens)} bearer tokens")
    if is_loopback(host):
        return Check("a2a.auth", True, f"no tokens: reachable on {host} only")
    return Check(
        "a2a.auth",
        False,
        f"no tokens while bound to {host}: configure [adapters.a2a] tokens or bind to 127.0.0.1",
    )


class A2AAdapter:
    """Every exposed agent as an A2A agent under `[adapters.a2a] path` (default `/a2a`)."""

    name: ClassVar[str] = "a2a"
    config_model: ClassVar[type[AdapterConfig]] = A2AConfig

    def __init__(self, config: A2AConfig | None = None) -> None:
        self.config = config or A2AConfig()
        self.server: A2AServer | None = None
        self.writer: TaskWriter | None = None

    async def serve(
        self,
        runtime: Runtime,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Mount the A2A routes and serve until cancelled.

        Raises:
            ConfigError: bound beyond loopback without bearer tokens, or a bad task store.
        """
        settings, config = runtime.settings, self.config
        exposure = _exposure(config, settings.http.host)
        if not exposure.ok:
            raise errors.ConfigError(exposure.detail, key="adapters.a2a.tokens")
        # The SDK's debug lines quote whole requests and events (messages, webhook
        # credentials) and its info lines narrate every task and webhook URL: warnings only.
        sdk_logger = logging.getLogger("a2a")
        sdk_logger.setLevel(max(logging.WARNING, sdk_logger.getEffectiveLevel()))
        async with (
            open_task_backend(config, settings.store.url) as backend,
            httpx.AsyncClient(timeout=config.push_timeout, follow_redirects=False) as webhooks,
            anyio.create_task_group() as group,
        ):
            sender = BasePushNotificationSender(
                webhooks, backend.push_configs, push_url_validator=webhook_policy(config)
            )
            writer = self.writer = TaskWriter(
                backend, sender if config.push_notifications else None
            )
            shared = Shared(runtime.conversations, runtime.files, config, group, writer)
            server = self.server = A2AServer(shared, backend, sender, settings.http.public_url)
            try:
                await server.refresh(runtime.agents)
            except errors.UpstreamError as exc:
                logger.warning("could not list the agents yet (%s); will retry", exc)
            runtime.http.mount(config.path, server)
            runtime.add_readiness("a2a.tasks", backend.ping)
            group.start_soon(server.watch, runtime.agents)
            task_status.started()
            try:
                await anyio.sleep_forever()
            finally:
                shared.closing = True
                with anyio.CancelScope(shield=True), anyio.move_on_after(10):
                    await server.aclose()

    async def deliver(
        self, record: InFlightTurn, task: Task | None, error: errors.UpstreamError | None
    ) -> None:
        """Recovery (`RecoversTurns`): deliver a turn whose process died.

        Raises:
            PlatformError: not serving yet; the record stays for the next pass.
        """
        if self.writer is None:
            raise errors.PlatformError("the a2a adapter is not serving yet", platform="a2a")
        await self.writer.deliver(record, task, error)

    @staticmethod
    async def doctor(config: A2AConfig, settings: Settings) -> list[Check]:
        """Exposure (tokens or loopback) and the task store (reachable, shared or not)."""
        checks = [_exposure(config, settings.http.host)]
        url = task_store_url(config, settings.store.url)
        if url is None:
            shared = settings.store.url.startswith("memory")
            checks.append(
                Check(
                    "a2a.tasks",
                    shared,
                    "in memory (tests)"
                    if shared
                    else "kept in each process: set [adapters.a2a] task_store for replicas",
                )
            )
            return checks
        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
            checks.append(Check("a2a.tasks", True, "task store reachable"))
        except (SQLAlchemyError, OSError) as exc:
            checks.append(
                Check("a2a.tasks", False, f"task store unreachable: {type(exc).__name__}")
            )
        finally:
            await engine.dispose()
        return checks
