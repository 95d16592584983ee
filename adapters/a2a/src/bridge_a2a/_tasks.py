"""Where A2A tasks, their events and push configs live: the SDK's stores, chosen from config.

A sqlite bridge store keeps the task tables in a file beside it; `task_store` names any
SQLAlchemy URL (shared by replicas); a memory store keeps them in this process.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import anyio
from a2a.server.cluster import DatabaseTaskEventStream, TaskEventStream, VersionedDatabaseTaskStore
from a2a.server.tasks import (
    DatabasePushNotificationConfigStore,
    InMemoryPushNotificationConfigStore,
    InMemoryTaskStore,
    PushNotificationConfigStore,
    TaskStore,
)
from sqlalchemy import text
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bridge.errors import ConfigError
from bridge_a2a._config import A2AConfig
from bridge_a2a._identity import owner_of

__all__ = ["TaskBackend", "open_task_backend", "task_store_url"]

logger = logging.getLogger(__name__)


@dataclass
class TaskBackend:
    """The SDK stores every agent's handler shares."""

    tasks: TaskStore | VersionedDatabaseTaskStore
    push_configs: PushNotificationConfigStore
    events: TaskEventStream | None
    description: str
    engine: AsyncEngine | None = None

    async def ping(self) -> bool:
        """Whether the task store answers (for `/readyz`)."""
        if self.engine is None:
            return True
        try:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except (SQLAlchemyError, OSError) as exc:
            logger.warning("the A2A task store does not answer: %s", type(exc).__name__)
            return False
        return True


def task_store_url(config: A2AConfig, store_url: str) -> str | None:
    """The SQLAlchemy URL of the task tables, or None for in-process tasks.

    Raises:
        ConfigError: a sqlite store URL that names no file.
    """
    if config.task_store is not None:
        return config.task_store.get_secret_value()
    scheme = store_url.partition("://")[0].lower()
    if scheme != "sqlite":
        return None
    path = unquote(urlsplit(store_url).path)[1:]
    if not path:
        raise ConfigError(f"sqlite store url {store_url!r} names no file", key="store.url")
    return f"sqlite+aiosqlite:///{path}.a2a"


def _safe(url: str) -> str:
    """A URL for logs and reports: scheme and host, never the credentials."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{'/…' if parts.path else ''}"


@asynccontextmanager
async def open_task_backend(config: A2AConfig, store_url: str) -> AsyncIterator[TaskBackend]:
    """The stores, created and initialised; the engine is disposed of on exit.

    Raises:
        ConfigError: the task store URL is not usable.
    """
    url = task_store_url(config, store_url)
    if url is None:
        if store_url.partition("://")[0].lower() != "memory":
            logger.warning(
                "A2A tasks are kept in this process only: set [adapters.a2a] task_store "
                "to share them between replicas"
            )
        yield TaskBackend(
            InMemoryTaskStore(owner_resolver=owner_of),
            InMemoryPushNotificationConfigStore(owner_resolver=owner_of),
            None,
            "in memory",
        )
        return
    try:
        engine = create_async_engine(url)
    except (ArgumentError, ImportError) as exc:
        raise ConfigError(
            f"cannot open the A2A task store {_safe(url)}: {type(exc).__name__}",
            key="adapters.a2a.task_store",
        ) from None
    try:
        tasks = VersionedDatabaseTaskStore(engine, owner_resolver=owner_of)
        pushes = DatabasePushNotificationConfigStore(engine, owner_resolver=owner_of)
        events = DatabaseTaskEventStream(engine, poll_interval_s=config.event_poll_interval)
        await tasks.initialize()
        await pushes.initialize()
        await events.initialize()
        yield TaskBackend(tasks, pushes, events, _safe(url), engine)
    finally:
        # Shielded: the adapter ends by cancellation, and an interrupted dispose leaves
        # the database connections open.
        with anyio.CancelScope(shield=True), anyio.move_on_after(10):
            await engine.dispose()
