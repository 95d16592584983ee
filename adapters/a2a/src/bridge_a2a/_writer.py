"""Writes an answer straight into an A2A task, outside any request: for turns recovered
after a crash, and for ends nobody came back for. Subscribers on any replica and
webhooks see it."""

from __future__ import annotations

import logging
from typing import Any

from a2a.server.agent_execution.active_task import TERMINAL_TASK_STATES
from a2a.server.cluster import ConcurrentTaskModificationError, LegacyTaskStoreAdapter
from a2a.server.cluster.task_store import VersionedTaskStore
from a2a.server.tasks import PushNotificationSender
from a2a.types.a2a_pb2 import (
    Artifact,
    Message,
    Part,
    Role,
    Task,
    TaskArtifactUpdateEvent,
    TaskState,
    TaskStatus,
    TaskStatusUpdateEvent,
)

from bridge import errors
from bridge.chat import Failure, failure_of, final_answer
from bridge.models import Task as UpstreamTask
from bridge.stores import InFlightTurn
from bridge_a2a._identity import call_context
from bridge_a2a._tasks import TaskBackend

__all__ = ["TaskWriter"]

logger = logging.getLogger(__name__)


def _state(status: str) -> TaskState:
    if status == "completed":
        return TaskState.TASK_STATE_COMPLETED
    return TaskState.TASK_STATE_CANCELED if status == "stopped" else TaskState.TASK_STATE_FAILED


class TaskWriter:
    """Final states written with the task store's version check (a newer write wins)."""

    def __init__(self, backend: TaskBackend, sender: PushNotificationSender | None) -> None:
        tasks = backend.tasks
        self._store: VersionedTaskStore = (
            tasks if isinstance(tasks, VersionedTaskStore) else LegacyTaskStoreAdapter(tasks)
        )
        self.sender = sender

    async def write_end(
        self, agent_id: str, principal: str, task_id: str, hook: str, args: tuple[Any, ...]
    ) -> None:
        """The last `finish` / `fail` hook of a turn, written to its task."""
        if hook == "finish":
            await self.write(agent_id, principal, task_id, "completed", str(args[0]))
        else:
            failure, streamed = args
            assert isinstance(failure, Failure)
            await self.write(agent_id, principal, task_id, failure.status, streamed or failure.text)

    async def deliver(
        self,
        record: InFlightTurn,
        task: UpstreamTask | None,
        failure: errors.UpstreamError | None,
    ) -> None:
        """The conversations service's recovery callback."""
        task_id = str(record.reply.get("a2a_task") or "")
        principal = str(record.reply.get("principal") or "")
        if not task_id:
            return
        if task is not None and task.status == "completed":
            status, text = "completed", final_answer(task, "")
        else:
            error = errors.RunFailedError(task) if task is not None else failure
            ended = failure_of(error)
            status, text = ended.status, ended.text
        await self.write(record.agent_id, principal, task_id, status, text)

    async def write(
        self, agent_id: str, principal: str, task_id: str, status: str, text: str
    ) -> None:
        context = call_context(agent_id, principal)
        stored = await self._store.get(task_id, context)
        if stored is None or stored.task.status.state in TERMINAL_TASK_STATES:
            return
        current = stored.task
        artifact = TaskArtifactUpdateEvent(
            task_id=task_id,
            context_id=current.context_id,
            artifact=Artifact(artifact_id="answer", name="answer", parts=[Part(text=text)]),
            last_chunk=True,
        )
        answered = Task()
        answered.CopyFrom(current)
        del answered.artifacts[:]
        answered.artifacts.append(artifact.artifact)
        finished = Task()
        finished.CopyFrom(answered)
        note = Message(message_id=f"{task_id}-end", role=Role.ROLE_AGENT, parts=[Part(text=text)])
        finished.status.CopyFrom(TaskStatus(state=_state(status), message=note))
        update = TaskStatusUpdateEvent(
            task_id=task_id, context_id=current.context_id, status=finished.status
        )
        try:
            version = await self._store.save(
                answered, event=artifact, prev=current, prev_version=stored.version, context=context
            )
            await self._store.save(
                finished, event=update, prev=answered, prev_version=version, context=context
            )
        except ConcurrentTaskModificationError:
            logger.info("A2A task %s changed meanwhile; keeping its state", task_id)
            return
        if self.sender is not None:
            await self.sender.send_notification(task_id, finished)
