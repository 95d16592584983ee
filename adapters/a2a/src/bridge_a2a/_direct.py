"""Each agent's request handler: the SDK's, with a direct path for the common call, a
blocking SendMessage that starts a task. Its events update one `Task` in memory; the store
gets the task when it starts and when it ends or needs the user.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from typing import Any

import anyio
from a2a.helpers import new_task
from a2a.server.agent_execution.active_task import INTERRUPTED_TASK_STATES, TERMINAL_TASK_STATES
from a2a.server.cluster import ConcurrentTaskModificationError
from a2a.server.cluster.version import TaskVersion
from a2a.server.context import ServerCallContext
from a2a.server.events import Event, EventQueue
from a2a.server.request_handlers import DefaultRequestHandlerV2
from a2a.server.tasks import TaskUpdater
from a2a.server.tasks.task_manager import append_artifact_to_task
from a2a.types.a2a_pb2 import (
    CancelTaskRequest,
    GetTaskRequest,
    Message,
    SendMessageRequest,
    SubscribeToTaskRequest,
    Task,
    TaskArtifactUpdateEvent,
    TaskState,
    TaskStatusUpdateEvent,
)
from a2a.utils.errors import InvalidAgentResponseError, TaskNotCancelableError, TaskNotFoundError
from a2a.utils.proto_utils import validate_proto_required_fields
from a2a.utils.task import apply_history_length, validate_history_length

from bridge_a2a._executor import BridgeExecutor

__all__ = ["BridgeRequestHandler", "TaskRecorder"]

_STOPS = TERMINAL_TASK_STATES | INTERRUPTED_TASK_STATES


class TaskRecorder(EventQueue):
    """The events of one request applied to its `Task` in memory, as the SDK's task
    manager applies them, and kept for the task's followers on this replica."""

    def __init__(self, task: Task) -> None:
        self.task = task
        self.events: list[Event] = []
        self.ended = anyio.Event()
        """Set once the request has written the task and left."""
        self._changed = anyio.Event()

    async def enqueue_event(self, event: Event) -> None:
        task = self.task
        if isinstance(event, TaskStatusUpdateEvent):
            if task.status.HasField("message"):
                task.history.append(task.status.message)
            if event.metadata:
                task.metadata.MergeFrom(event.metadata)
            task.status.CopyFrom(event.status)
        elif isinstance(event, TaskArtifactUpdateEvent):
            append_artifact_to_task(task, event)
        else:
            raise InvalidAgentResponseError(f"unexpected {type(event).__name__} in a task")
        self.events.append(event)
        self._changed.set()
        self._changed = anyio.Event()

    def end(self) -> None:
        self.ended.set()
        self._changed.set()

    async def follow(self) -> AsyncIterator[Event]:
        """The task as it is now, then each later event until it ends or needs the user."""
        snapshot = Task()
        snapshot.CopyFrom(self.task)
        seen = len(self.events)
        yield snapshot
        while True:
            while seen < len(self.events):
                event = self.events[seen]
                seen += 1
                yield event
                if isinstance(event, TaskStatusUpdateEvent) and event.status.state in _STOPS:
                    return
            if self.ended.is_set():
                return
            await self._changed.wait()


class BridgeRequestHandler(DefaultRequestHandlerV2):
    """The SDK's request handler; a blocking send that starts a task goes the direct way.

    The SDK's handler runs every task as a producer and a consumer around an event queue
    and writes the task to the store at each event, which cost more per call than the
    rest of the A2A path together. Everything else (streaming, non-blocking sends, resumes, sends with a
    push config) goes the SDK's way; list and push configs read the store; get, cancel
    and subscribe reach a direct task through `direct` on its replica (get elsewhere
    reads its start from the store; cancel and subscribe elsewhere go through the store).
    """

    def __init__(self, executor: BridgeExecutor, **options: Any) -> None:
        super().__init__(agent_executor=executor, **options)
        self._executor = executor
        self.direct: dict[str, TaskRecorder] = {}
        """Task id → the direct request running it on this replica."""
        self.scopes: dict[str, anyio.CancelScope] = {}

    @staticmethod
    def is_direct(params: SendMessageRequest) -> bool:
        options = params.configuration
        return not (
            params.message.task_id
            or options.return_immediately
            or options.HasField("task_push_notification_config")
        )

    async def on_message_send(
        self, params: SendMessageRequest, context: ServerCallContext
    ) -> Message | Task:
        if not self.is_direct(params):
            answer: Message | Task = await super().on_message_send(params, context)
            return answer
        validate_proto_required_fields(params)
        validate_history_length(params.configuration)
        request = await self._request_context_builder.build(
            params=params,
            task_id=None,
            context_id=params.message.context_id or None,
            task=None,
            context=context,
        )
        task_id, context_id = request.task_id or "", request.context_id or ""
        message = await self._executor.inbound(request)
        history = [request.message] if request.message is not None else []
        task = new_task(task_id, context_id, TaskState.TASK_STATE_SUBMITTED, history=history)
        first = Task()
        first.CopyFrom(task)
        store = self._versioned_store
        version = await store.save(
            first, event=first, prev=None, prev_version=TaskVersion.MISSING, context=context
        )
        recorder = self.direct[task_id] = TaskRecorder(task)
        try:
            with anyio.CancelScope() as self.scopes[task_id]:
                live = await self._executor.start_turn(message, task_id, context_id)
                async with anyio.create_task_group() as group:
                    if self._event_stream is not None:
                        group.start_soon(self._watch_cancel, task_id, version)
                    await self._executor.follow(live, TaskUpdater(recorder, task_id, context_id))
                    group.cancel_scope.cancel()
                task = await self._write(task, first, version, context)
        finally:
            del self.direct[task_id], self.scopes[task_id]
            recorder.end()
        return apply_history_length(task, params.configuration)

    async def _watch_cancel(self, task_id: str, after: TaskVersion) -> None:
        """Stop the upstream task when another replica cancels the task (it writes the
        cancellation to the shared store, whose event log this follows)."""
        assert self._event_stream is not None
        async with aclosing(self._event_stream.subscribe(task_id, after=after)) as events:
            async for versioned in events:
                event = versioned.event
                if isinstance(event, TaskStatusUpdateEvent | Task) and (
                    event.status.state == TaskState.TASK_STATE_CANCELED
                ):
                    await self._executor.stop_turn(task_id)
                    return

    async def _write(
        self, task: Task, first: Task, version: TaskVersion, context: ServerCallContext
    ) -> Task:
        """The task as the turn left it, with its whole answer and its state as the events
        other replicas' subscribers read; a task cancelled meanwhile stays cancelled."""
        events: list[Event] = [
            TaskArtifactUpdateEvent(
                task_id=task.id, context_id=task.context_id, artifact=artifact, last_chunk=True
            )
            for artifact in task.artifacts
        ]
        events.append(
            TaskStatusUpdateEvent(task_id=task.id, context_id=task.context_id, status=task.status)
        )
        store, previous = self._versioned_store, first
        try:
            for event in events:
                version = await store.save(
                    task, event=event, prev=previous, prev_version=version, context=context
                )
                previous = task
        except ConcurrentTaskModificationError:
            stored = await store.get(task.id, context)
            return stored.task if stored is not None else task
        if self._push_sender is not None:
            await self._push_sender.send_notification(task.id, task)
        return task

    async def on_get_task(self, params: GetTaskRequest, context: ServerCallContext) -> Task:
        recorder = self.direct.get(params.id)
        if recorder is None or await self._versioned_store.get(params.id, context) is None:
            stored: Task | None = await super().on_get_task(params, context)
            if stored is None:  # the SDK raises rather than return nothing
                raise TaskNotFoundError
            return stored
        validate_history_length(params)
        live = Task()
        live.CopyFrom(recorder.task)  # the store has its start; this replica has it now
        return apply_history_length(live, params)

    async def on_cancel_task(self, params: CancelTaskRequest, context: ServerCallContext) -> Task:
        recorder = self.direct.get(params.id)
        if recorder is None:
            found: Task | None = await super().on_cancel_task(params, context)
            if found is None:  # the SDK raises rather than return nothing
                raise TaskNotFoundError
            return found
        if await self._versioned_store.get(params.id, context) is None:
            raise TaskNotFoundError
        await self._executor.stop_turn(params.id)
        with anyio.move_on_after(10):
            await recorder.ended.wait()
        stored = await self._versioned_store.get(params.id, context)
        if stored is None or stored.task.status.state != TaskState.TASK_STATE_CANCELED:
            raise TaskNotCancelableError
        return stored.task

    async def on_subscribe_to_task(  # type: ignore[override]
        self, params: SubscribeToTaskRequest, context: ServerCallContext
    ) -> AsyncIterator[Event]:
        recorder = self.direct.get(params.id)
        if recorder is None or await self._versioned_store.get(params.id, context) is None:
            async for event in super().on_subscribe_to_task(params, context):
                yield event
            return
        async for event in recorder.follow():
            yield event

    async def settle(self, is_handed: Callable[[str], bool]) -> None:
        """Wait for the direct requests whose turns handed them their end to write it."""
        for task_id, recorder in list(self.direct.items()):
            if is_handed(task_id):
                await recorder.ended.wait()

    def cancel_direct(self) -> None:
        """Cancel every direct request still waiting on its turn (shutdown: their turns
        stay in flight for recovery)."""
        for scope in list(self.scopes.values()):
            scope.cancel()
