"""Recovery of turns whose replica died: finish them upstream and deliver them exactly once.

Part of the conversations service (`Conversations` inherits it); split out to keep the
turn machinery and the crash path readable on their own.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc

from bridge import errors
from bridge.client import AgentClient
from bridge.config import ConversationsConfig
from bridge.models import Task, User
from bridge.stores import InFlightTurn, SessionStore, ThreadRef

if TYPE_CHECKING:
    from bridge.metrics import Metrics

__all__ = ["Deliver", "RecoveryMixin"]

logger = logging.getLogger("bridge.conversations")

Deliver = Callable[[InFlightTurn, Task | None, "errors.UpstreamError | None"], Awaitable[None]]
"""Recovery callback: deliver a recorded turn's final task (or the error that ended it)."""


class RecoveryMixin:
    """Recovery of orphaned turns, for `Conversations`."""

    client: AgentClient
    store: SessionStore
    config: ConversationsConfig
    replica_id: str
    metrics: Metrics | None
    _running: dict[str, Any]

    async def _is_orphan(self, record: InFlightTurn) -> bool:
        if record.holder == self.replica_id:
            return record.key not in self._running
        holder = record.holder or ""
        return await self.store.lock_owner(f"replica:{holder}") is None

    async def recover(self, adapter: str, deliver: Deliver) -> int:
        """Finish every recorded turn of `adapter` whose holder died; returns how many.

        For each: wait until the task is terminal upstream (re-running a turn that
        never reached the platform), hand the result to `deliver`, then mark it
        delivered atomically and drop the record. `deliver` must be idempotent:
        it may run again if this process dies between delivering and marking. A
        `PlatformError` from `deliver` leaves the record for the next pass.
        """
        recovered = 0
        for record in await self.store.list_turns():
            if record.adapter != adapter or not await self._is_orphan(record):
                continue
            lock = f"recover:{record.turn_id}"
            if not await self.store.acquire_lock(lock, self.replica_id, self.config.lock_lease):
                continue
            try:
                if await self.store.get_turn(record.turn_id) is None:
                    continue
                await self._recover_one(record, deliver)
                recovered += 1
                if self.metrics:
                    self.metrics.recovered.labels(adapter).inc()
            except errors.PlatformError as exc:
                # The record stays for the next pass; the other orphans go on now.
                logger.warning("could not deliver recovered turn %s: %s", record.turn_id, exc)
            finally:
                await self.store.release_lock(lock, self.replica_id)
        return recovered

    async def _recover_one(self, record: InFlightTurn, deliver: Deliver) -> None:
        logger.info(
            "recovering turn %s of %s (task %s)", record.turn_id, record.key, record.task_id
        )
        task: Task | None = None
        failure: errors.UpstreamError | None = None
        try:
            if record.task_id:
                task = await self.client.wait_task(record.task_id)
            else:
                user = User.model_validate(record.user) if record.user else None
                async with self.client.stream(
                    record.agent_id,
                    record.text,
                    thread=record.thread,
                    user=user,
                    source=record.source,
                ) as run:
                    task = await run.result()
                await self.store.put_thread(
                    record.key, ThreadRef(task_id=task.id, agent_id=record.agent_id)
                )
        except errors.RunFailedError as exc:
            task, failure = exc.task, exc
        except errors.UpstreamError as exc:
            failure = exc
        claimed = False
        if await self.store.get_turn(record.turn_id) is not None:
            await deliver(record, task, failure)
            claimed = await self.store.claim_delivery(record.turn_id)
        await self.store.drop_turn(record.turn_id)
        if not claimed:
            logger.info("turn %s had already been delivered", record.turn_id)

    async def run_recovery(
        self,
        adapter: str,
        deliver: Deliver,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Recover at start-up, then periodically; runs until cancelled."""
        task_status.started()
        while True:
            try:
                await self.recover(adapter, deliver)
            except (errors.UpstreamError, errors.StoreError) as exc:
                logger.warning("recovery pass for %s failed: %s", adapter, exc)
            await anyio.sleep(self.config.recovery_interval)
