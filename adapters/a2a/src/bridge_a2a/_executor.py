"""The A2A agent executor: one A2A task is one conversation turn of one upstream agent.

Cancellation stops the upstream task; a shutdown does not (the turn stays in the
in-flight ledger and recovery finishes it). A message for a task that waits on the user
(input-required, auth-required) resumes its turn: on this replica by attaching to it,
elsewhere by following the upstream task to its end.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc
from a2a.helpers import new_task
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.agent_execution.active_task import INTERRUPTED_TASK_STATES
from a2a.server.events import EventQueue
from a2a.server.tasks import TaskUpdater
from a2a.types.a2a_pb2 import TaskState
from a2a.utils.errors import InvalidParamsError

from bridge import errors
from bridge.chat import Failure, failure_of, final_answer
from bridge.conversations import Conversations, Message
from bridge.files import FileHost
from bridge.models import Agent
from bridge_a2a._chat import A2AAnswerView
from bridge_a2a._config import A2AConfig
from bridge_a2a._contexts import context_key
from bridge_a2a._identity import upstream_user
from bridge_a2a._inbound import to_message
from bridge_a2a._live import LiveTurn
from bridge_a2a._writer import TaskWriter

__all__ = ["BridgeExecutor", "Shared"]

_GONE = Failure("failed", "failed", "⚠️ The conversation of this task is gone.")

logger = logging.getLogger(__name__)

SOURCE = "a2a"


@dataclass
class Shared:
    """What every agent's executor shares."""

    conversations: Conversations
    files: FileHost
    config: A2AConfig
    group: anyio.abc.TaskGroup
    writer: TaskWriter
    closing: bool = False
    live: dict[str, LiveTurn] = field(default_factory=dict)
    """A2A task id → its turn on this replica."""


class BridgeExecutor(AgentExecutor):
    """Runs A2A tasks of one upstream agent."""

    def __init__(self, agent: Agent, shared: Shared) -> None:
        self.agent = agent
        self._shared = shared

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        task_id, context_id = context.task_id or "", context.context_id or ""
        updater = TaskUpdater(event_queue, task_id, context_id)
        current = context.current_task
        live = self._shared.live.get(task_id)
        if current is not None and current.status.state in INTERRUPTED_TASK_STATES:
            if live is None:
                await self._follow_upstream(context_id, updater)
                return
        elif current is None:
            history = [context.message] if context.message else []
            await event_queue.enqueue_event(
                new_task(task_id, context_id, TaskState.TASK_STATE_SUBMITTED, history=history)
            )
            live = await self.start_turn(await self.inbound(context), task_id, context_id)
        if live is None:
            raise InvalidParamsError(message=f"task {task_id} is not waiting for a message")
        await self.follow(live, updater)

    async def inbound(self, context: RequestContext) -> Message:
        """The bridge's message for the request's A2A message.

        Raises:
            InvalidParamsError: no message, no text, or a file that cannot be taken.
        """
        shared = self._shared
        principal = context.call_context.user.user_name
        if context.message is None:
            raise InvalidParamsError(message="a message is required")
        task_id, context_id = context.task_id or "", context.context_id or ""
        return await to_message(
            context.message,
            files=shared.files,
            user=upstream_user(principal, shared.config),
            principal=principal,
            max_file_bytes=shared.config.max_file_bytes,
            reply={"a2a_task": task_id, "context": context_id, "principal": principal},
        )

    async def start_turn(self, message: Message, task_id: str, context_id: str) -> LiveTurn:
        """Start the upstream turn of a new task in the adapter's task group."""
        shared = self._shared
        principal = message.principal or ""
        live = shared.live[task_id] = LiveTurn(task_id)

        async def unclaimed(turn: LiveTurn, hook: str, args: tuple[Any, ...]) -> None:
            await shared.writer.write_end(self.agent.id, principal, task_id, hook, args)

        async def run(*, task_status: anyio.abc.TaskStatus[None]) -> None:
            try:
                await live.run(
                    shared.conversations,
                    context_key(self.agent.id, context_id),
                    message,
                    agent_id=self.agent.id,
                    source=SOURCE,
                    keep_for=shared.config.interrupted_timeout,
                    on_unclaimed=unclaimed,
                    task_status=task_status,
                )
            finally:
                shared.live.pop(task_id, None)

        await shared.group.start(run)
        return live

    async def follow(self, live: LiveTurn, updater: TaskUpdater) -> None:
        """Show the turn through `updater` until it needs the user or ends; a cancelled
        request stops the upstream task, unless the bridge is shutting down."""
        try:
            await live.attach(updater)
        except anyio.get_cancelled_exc_class():
            if not self._shared.closing:
                await self.stop_turn(live.task_id)
            raise

    async def _follow_upstream(self, context_id: str, updater: TaskUpdater) -> None:
        """The turn that asked the user runs elsewhere (or died): wait for its upstream task."""
        view = A2AAnswerView(updater)
        ref = await self._shared.conversations.thread_for(context_key(self.agent.id, context_id))
        if ref is None:
            await view.fail(_GONE, "")
            return
        await view.note("following the agent's turn")
        try:
            task = await self._shared.conversations.client.wait_task(ref.task_id)
        except errors.UpstreamError as exc:
            await view.fail(failure_of(exc), "")
            return
        if task.status == "completed":
            await view.finish(final_answer(task, ""))
        else:
            await view.fail(failure_of(errors.RunFailedError(task)), "")

    async def stop_turn(self, task_id: str) -> None:
        """Stop the upstream task of the task's turn on this replica, if it has begun."""
        live = self._shared.live.get(task_id)
        upstream = live.upstream_task if live is not None else None
        if upstream is None:
            return
        with anyio.CancelScope(shield=True), anyio.move_on_after(10):
            try:
                await self._shared.conversations.client.stop_task(upstream)
            except errors.UpstreamError as exc:
                logger.warning("could not stop upstream task %s: %s", upstream, exc)

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        """Stop the upstream task; the SDK then ends the A2A task as canceled."""
        await self.stop_turn(context.task_id or "")
