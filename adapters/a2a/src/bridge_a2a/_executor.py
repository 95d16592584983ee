"""The A2A agent executor: one A2A task is one conversation turn of one upstream agent.

Cancellation stops the upstream task; a shutdown does not (the turn stays in the
in-flight ledger and recovery finishes it). A message for a task waiting on the user
(input-required, auth-required) that runs here without the original turn follows the
upstream task to its end.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import anyio
from a2a.helpers import new_task
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.agent_execution.active_task import INTERRUPTED_TASK_STATES
from a2a.server.events import EventQueue
from a2a.server.tasks import TaskUpdater
from a2a.types.a2a_pb2 import TaskState

from bridge import errors
from bridge.conversations import Conversations, Turn
from bridge.files import FileHost
from bridge.models import Agent
from bridge_a2a._chat import A2AAnswerView, drive, failure_text, final_answer
from bridge_a2a._config import A2AConfig
from bridge_a2a._contexts import context_key
from bridge_a2a._identity import upstream_user
from bridge_a2a._inbound import to_message

__all__ = ["BridgeExecutor", "Shared"]

logger = logging.getLogger(__name__)

SOURCE = "a2a"


@dataclass
class Shared:
    """What every agent's executor shares."""

    conversations: Conversations
    files: FileHost
    config: A2AConfig
    closing: bool = False
    turns: dict[str, Turn] = field(default_factory=dict)
    """A2A task id → its running turn on this replica."""


class BridgeExecutor(AgentExecutor):
    """Runs A2A tasks of one upstream agent."""

    def __init__(self, agent: Agent, shared: Shared) -> None:
        self.agent = agent
        self._shared = shared

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        task_id, context_id = context.task_id or "", context.context_id or ""
        updater = TaskUpdater(event_queue, task_id, context_id)
        current = context.current_task
        if current is None:
            history = [context.message] if context.message else []
            await event_queue.enqueue_event(
                new_task(task_id, context_id, TaskState.TASK_STATE_SUBMITTED, history=history)
            )
        elif current.status.state in INTERRUPTED_TASK_STATES:
            await self._follow_upstream(context_id, updater)
            return
        principal = context.call_context.user.user_name
        shared = self._shared
        assert context.message is not None
        message = await to_message(
            context.message,
            files=shared.files,
            user=upstream_user(principal, shared.config),
            principal=principal,
            reply={"a2a_task": task_id, "context": context_id, "principal": principal},
        )
        view = A2AAnswerView(updater)

        async def queued() -> None:
            await view.progress("waiting for the previous message of this conversation")

        try:
            async with shared.conversations.turn(
                context_key(self.agent.id, context_id),
                message,
                agent_id=self.agent.id,
                source=SOURCE,
                on_queued=queued,
            ) as turn:
                shared.turns[task_id] = turn
                await drive(turn, view)
        except anyio.get_cancelled_exc_class():
            if not shared.closing:
                await self._stop(task_id)
            raise
        finally:
            shared.turns.pop(task_id, None)

    async def _follow_upstream(self, context_id: str, updater: TaskUpdater) -> None:
        """The turn that asked the user runs elsewhere (or died): wait for its upstream task."""
        view = A2AAnswerView(updater)
        ref = await self._shared.conversations.thread_for(context_key(self.agent.id, context_id))
        if ref is None:
            await view.fail("failed", "The conversation of this task is gone.", "")
            return
        await view.start()
        try:
            task = await self._shared.conversations.client.wait_task(ref.task_id)
        except errors.UpstreamError as exc:
            await view.fail("error", f"The agent platform did not answer: {exc}", "")
            return
        if task.status == "completed":
            await view.finish(final_answer(task, ""))
        else:
            await view.fail(task.status, failure_text(task.status, task), "")

    async def _stop(self, task_id: str) -> None:
        turn = self._shared.turns.get(task_id)
        upstream = turn.run.task_id if turn is not None and turn.run is not None else None
        if upstream is None:
            return
        with anyio.CancelScope(shield=True), anyio.move_on_after(10):
            try:
                await self._shared.conversations.client.stop_task(upstream)
            except errors.UpstreamError as exc:
                logger.warning("could not stop upstream task %s: %s", upstream, exc)

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        """Stop the upstream task; the SDK then ends the A2A task as canceled."""
        await self._stop(context.task_id or "")
