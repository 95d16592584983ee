"""Recovery: a turn whose replica died is finished upstream by the core, then its answer is
written here into the A2A task, so a client polling or subscribed on any replica gets it."""

from __future__ import annotations

import logging

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
from bridge.models import Task as UpstreamTask
from bridge.stores import InFlightTurn
from bridge_a2a._chat import failure_text, final_answer
from bridge_a2a._identity import call_context
from bridge_a2a._tasks import TaskBackend

__all__ = ["Recovery"]

logger = logging.getLogger(__name__)

_STATES = {"completed": TaskState.TASK_STATE_COMPLETED, "stopped": TaskState.TASK_STATE_CANCELED}


class Recovery:
    """The `deliver` callback of the conversations service's recovery, for A2A tasks."""

    def __init__(self, backend: TaskBackend, sender: PushNotificationSender | None) -> None:
        tasks = backend.tasks
        self._store: VersionedTaskStore = (
            tasks if isinstance(tasks, VersionedTaskStore) else LegacyTaskStoreAdapter(tasks)
        )
        self._sender = sender

    async def __call__(
        self,
        record: InFlightTurn,
        task: UpstreamTask | None,
        failure: errors.UpstreamError | None,
    ) -> None:
        task_id = str(record.reply.get("a2a_task") or "")
        principal = str(record.reply.get("principal") or "")
        if not task_id:
            return
        context = call_context(record.agent_id, principal)
        stored = await self._store.get(task_id, context)
        if stored is None or stored.task.status.state in TERMINAL_TASK_STATES:
            return
        current, version = stored.task, stored.version
        status = task.status if task is not None else "error"
        if task is not None and status == "completed":
            text = final_answer(task, "")
        elif failure is not None and task is None:
            text = f"The agent platform did not answer: {failure}"
        else:
            text = failure_text(status, task)
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
        finished.status.CopyFrom(
            TaskStatus(
                state=_STATES.get(status, TaskState.TASK_STATE_FAILED),
                message=Message(
                    message_id=f"{task_id}-recovered",
                    role=Role.ROLE_AGENT,
                    parts=[Part(text="Recovered after a restart of the bridge.")],
                ),
            )
        )
        update = TaskStatusUpdateEvent(
            task_id=task_id, context_id=current.context_id, status=finished.status
        )
        try:
            version = await self._store.save(
                answered, event=artifact, prev=current, prev_version=version, context=context
            )
            await self._store.save(
                finished, event=update, prev=answered, prev_version=version, context=context
            )
        except ConcurrentTaskModificationError:
            logger.info("A2A task %s changed while recovering; keeping its state", task_id)
            return
        if self._sender is not None:
            await self._sender.send_notification(task_id, finished)
