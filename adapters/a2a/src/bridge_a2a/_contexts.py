"""A2A contexts ↔ upstream threads: a `contextId` is issued by the bridge, kept in the
session store bound to the caller, and refused (as not found) to anyone else.

Also the per-user message rate (shared by replicas), checked before a task is created.
"""

from __future__ import annotations

import uuid
from typing import Any

from a2a.server.agent_execution import RequestContext, SimpleRequestContextBuilder
from a2a.server.cluster import VersionedTaskStore
from a2a.server.context import ServerCallContext
from a2a.server.tasks import TaskStore
from a2a.types.a2a_pb2 import SendMessageRequest, Task
from a2a.utils.errors import InvalidRequestError, TaskNotFoundError

from bridge.chat import UserGate
from bridge.conversations import ConversationKey, Conversations

__all__ = ["ContextBuilder", "context_key"]

ADAPTER = "a2a"


def context_key(agent_id: str, context_id: str) -> ConversationKey:
    return ConversationKey(ADAPTER, agent_id, context_id)


class ContextBuilder(SimpleRequestContextBuilder):
    """The SDK's request context, with the bridge's rules for `contextId` and rates."""

    def __init__(
        self,
        agent_id: str,
        conversations: Conversations,
        tasks: TaskStore | VersionedTaskStore,
        gate: UserGate,
    ) -> None:
        super().__init__()
        self._agent_id = agent_id
        self._conversations = conversations
        self._tasks = tasks
        self._gate = gate

    async def _task(self, task_id: str, context: ServerCallContext) -> Task | None:
        found: Any = await self._tasks.get(task_id, context)
        return found.task if found is not None and not isinstance(found, Task) else found

    async def build(
        self,
        context: ServerCallContext,
        params: SendMessageRequest | None = None,
        task_id: str | None = None,
        context_id: str | None = None,
        task: Task | None = None,
    ) -> RequestContext:
        """Raises:
        TaskNotFoundError: an unknown contextId, or one that belongs to someone else.
        InvalidRequestError: the caller is over the per-user message rate.
        """
        principal = context.user.user_name
        if params is not None:
            wait = await self._gate.take(principal)
            if wait:
                raise InvalidRequestError(message=f"too many messages: try again in {wait:.0f}s")
            if task_id:
                found = await self._task(task_id, context)
                context_id = found.context_id if found is not None else context_id
            elif context_id:
                ref = await self._conversations.store.get_thread(
                    str(context_key(self._agent_id, context_id))
                )
                if ref is None or ref.owner != principal:
                    raise TaskNotFoundError(message=f"context {context_id} not found")
            else:
                context_id = uuid.uuid4().hex
                await self._conversations.choose_agent(
                    context_key(self._agent_id, context_id), self._agent_id, owner=principal
                )
        return await super().build(context, params, task_id, context_id, task)
