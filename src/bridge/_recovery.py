"""Recovery of turns whose replica died: finish them upstream and deliver them exactly once.

A collaborator of the conversations service (`Conversations.recovery`), which asks it
whether a turn of its own is still running.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import anyio
import anyio.abc

from bridge import errors
from bridge.client import AgentClient, Checkpoint
from bridge.config import ConversationsConfig
from bridge.models import Task, User
from bridge.stores import InFlightTurn, SessionStore, ThreadRef

if TYPE_CHECKING:
    from bridge.metrics import Metrics

__all__ = ["Deliver", "Recovery"]

logger = logging.getLogger("bridge.conversations")

Deliver = Callable[[InFlightTurn, Task | None, "errors.UpstreamError | None"], Awaitable[None]]
"""Recovery callback: deliver a recorded turn's final task (or the error that ended it)."""


class Recovery:
    """Finds the turns whose holder died and delivers them; counts delivery failures."""

    def __init__(
        self,
        client: AgentClient,
        store: SessionStore,
        config: ConversationsConfig,
        *,
        replica_id: str,
        is_running: Callable[[str], bool],
        metrics: Metrics | None = None,
    ) -> None:
        self.client = client
        self.store = store
        self.config = config
        self.replica_id = replica_id
        self.metrics = metrics
        self._is_running = is_running

    async def _is_orphan(self, record: InFlightTurn) -> bool:
        if record.holder == self.replica_id:
            return not self._is_running(record.key)
        holder = record.holder or ""
        return await self.store.lock_owner(f"replica:{holder}") is None

    async def recover(self, adapter: str, deliver: Deliver) -> int:
        """Finish every recorded turn of `adapter` whose holder died; returns how many.

        For each: wait until the task is terminal upstream (a turn recorded with a
        checkpoint is first checked with the platform; one that never reached it is
        run again), hand the result to `deliver`, then mark it
        delivered atomically and drop the record. `deliver` must be idempotent:
        it may run again if this process dies between delivering and marking. A
        `PlatformError` from `deliver` leaves the record for the next pass; any
        other failure counts against the record, which is quarantined after
        `max_delivery_attempts` of them, so one poison answer cannot crash-loop.
        """
        recovered = 0
        for record in await self.store.list_turns():
            if record.adapter != adapter or record.quarantined:
                continue
            if not await self._is_orphan(record):
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
            except Exception as exc:  # contained: one turn's failure must not end recovery
                await self.count_failure(record, exc, stage="recover")
            finally:
                await self.store.release_lock(lock, self.replica_id)
        return recovered

    async def count_failure(self, record: InFlightTurn, exc: BaseException, *, stage: str) -> None:
        """Log and count a failure to render or deliver `record`; quarantine it at the limit."""
        current = await self.store.get_turn(record.turn_id) or record
        attempts = current.attempts + 1
        quarantine = attempts >= self.config.max_delivery_attempts
        failure = f"{type(exc).__name__}: {exc}"[:300]
        await self.store.record_turn(
            current.model_copy(
                update={"attempts": attempts, "quarantined": quarantine, "last_error": failure}
            )
        )
        logger.warning(
            "turn %s of %s (task %s) failed at %s (attempt %d of %d%s): %s",
            record.turn_id,
            record.key,
            record.task_id,
            stage,
            attempts,
            self.config.max_delivery_attempts,
            ", quarantined" if quarantine else "",
            failure,
            exc_info=logger.isEnabledFor(logging.DEBUG),
        )
        if self.metrics:
            self.metrics.turn_failures.labels(record.adapter, stage).inc()
            if quarantine:
                self.metrics.quarantined.labels(record.adapter).inc()

    async def _recover_one(self, record: InFlightTurn, deliver: Deliver) -> None:
        logger.info(
            "recovering turn %s of %s (task %s)", record.turn_id, record.key, record.task_id
        )
        task: Task | None = None
        failure: errors.UpstreamError | None = None
        try:
            started = await self._started_task(record)
            if started is not None:
                task = await self._own_result(record, await self.client.wait_task(started))
            else:
                user = User.model_validate(record.user) if record.user else None
                async with self.client.stream(
                    record.agent_id,
                    record.text,
                    thread=record.thread,
                    user=user,
                    source=record.source,
                    checkpoint=_checkpoint(record),
                ) as run:
                    task = await run.result()
            if record.thread is None and not record.task_id:
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
            claimed = await self.store.finish_turn(record.turn_id)
        else:
            await self.store.drop_turn(record.turn_id)
        if not claimed:
            logger.info("turn %s had already been delivered", record.turn_id)

    async def _own_result(self, record: InFlightTurn, task: Task) -> Task:
        """`task` with the answer to this turn's own message: the task object is the thread's
        latest turn, which after a crash may be a later message's (read from the thread)."""
        checkpoint = _checkpoint(record)
        if checkpoint is None:
            return task
        try:
            messages = await self.client.get_thread(task.id)
        except errors.UpstreamError as exc:
            logger.info(
                "turn %s: thread unreadable, delivering the latest result: %s", record.turn_id, exc
            )
            return task
        wanted = record.text.strip()
        later = messages[checkpoint.baseline or 0 :]
        for index, message in enumerate(later):
            if message.role == "user" and str(message.content).strip() == wanted:
                for answer in later[index + 1 :]:
                    if answer.role == "user":
                        break  # a later turn began: this one had no answer of its own
                    if answer.role == "assistant" and str(answer.content).strip():
                        return task.model_copy(update={"result": str(answer.content)})
                break
        return task

    async def _started_task(self, record: InFlightTurn) -> str | None:
        """The task id of the recorded turn if it reached the platform, else None.

        Raises:
            TurnUnknownError: the platform could not say.
        """
        if record.task_id:
            return record.task_id
        checkpoint = _checkpoint(record)
        if checkpoint is None:
            return None  # recorded without a checkpoint: sent again, as it always was
        found = await self.client.find_turn(checkpoint)
        return None if found is None else found.id

    async def run(
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
            except Exception as exc:  # the outermost loop: log and try again next pass
                logger.error(
                    "recovery pass for %s failed: %s: %s",
                    adapter,
                    type(exc).__name__,
                    exc,
                    exc_info=logger.isEnabledFor(logging.DEBUG),
                )
            await anyio.sleep(self.config.recovery_interval)


def _checkpoint(record: InFlightTurn) -> Checkpoint | None:
    """The checkpoint recorded with a turn, if it has one that can be checked."""
    if record.thread is None:
        if record.new_thread_id is None:
            return None
        return Checkpoint(record.text, record.new_thread_id, is_new=True)
    if record.thread_messages is None:
        return None
    return Checkpoint(record.text, record.thread, is_new=False, baseline=record.thread_messages)
