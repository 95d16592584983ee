"""A turn that outlives the A2A request that started it.

A task that needs the user (input-required, auth-required) ends its `execute` call, as
A2A's in-band model asks, while the upstream turn goes on in the adapter's task group.
The next message for that task attaches to the turn again and receives what happened
meanwhile, then follows it to its next interruption or its end.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.abc
from a2a.server.tasks import TaskUpdater

from bridge.chat import ApprovalRequest, Failure, Progress, SignInRequest, Step, drive, failure_of
from bridge.conversations import ConversationKey, Conversations, Message, Turn
from bridge_a2a._chat import A2AAnswerView

__all__ = ["LiveTurn"]

logger = logging.getLogger(__name__)

#: Hooks after which the request that is attached gives control back.
_YIELDS = frozenset({"approval", "sign_in", "finish", "fail"})
_ENDS = frozenset({"finish", "fail"})
_MERGED = "Answered together with the other messages sent meanwhile in this conversation."


class LiveTurn:
    """One upstream turn and the A2A request currently attached to it, if any.

    It is itself the `AnswerView` of the turn: each hook goes to the attached request's
    view, or waits in order for the next request while none is attached.
    """

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        self.turn: Turn | None = None
        self.ended = False
        self._view = A2AAnswerView(None)
        self._attached = False
        self.handed_end = False
        """Whether a request received the turn's end (finish or fail)."""
        self._pending: list[tuple[str, tuple[Any, ...]]] = []
        self._released = anyio.Event()
        self._collected = anyio.Event()

    @property
    def upstream_task(self) -> str | None:
        turn = self.turn
        return turn.run.task_id if turn is not None and turn.run is not None else None

    async def attach(self, updater: TaskUpdater) -> None:
        """Show the turn through `updater` until it needs the user again or ends."""
        self._view.updater = updater
        self._released = anyio.Event()
        last: str | None = None
        # Hooks arriving while the backlog is replayed queue behind it, keeping the order.
        while self._pending:
            backlog, self._pending = self._pending, []
            for name, args in backlog:
                await getattr(self._view, name)(*args)
                self.handed_end = self.handed_end or name in _ENDS
                last = name
        if last in _YIELDS or self.ended:
            self._release()
            return
        self._attached = True
        await self._released.wait()

    def _release(self) -> None:
        self._attached = False
        if self.ended and not self._pending:
            self._collected.set()
        self._released.set()

    async def _hook(self, name: str, *args: Any) -> None:
        if not self._attached:
            self._pending.append((name, args))
            return
        await getattr(self._view, name)(*args)
        self.handed_end = self.handed_end or name in _ENDS
        if name in _YIELDS:
            self._release()

    async def start(self) -> None:
        await self._hook("start")

    async def text(self, delta: str, streamed: str) -> None:
        await self._hook("text", delta, streamed)

    async def progress(self, step: Step, progress: Progress) -> None:
        await self._hook("note", step.line)

    async def note(self, line: str) -> None:
        await self._hook("note", line)

    async def approval(self, request: ApprovalRequest) -> None:
        await self._hook("approval", request)

    async def sign_in(self, request: SignInRequest) -> None:
        await self._hook("sign_in", request)

    async def finish(self, answer: str) -> None:
        await self._hook("finish", answer)

    async def fail(self, failure: Failure, streamed: str) -> None:
        await self._hook("fail", failure, streamed)

    async def run(
        self,
        conversations: Conversations,
        key: ConversationKey,
        message: Message,
        *,
        agent_id: str,
        source: str,
        keep_for: float,
        on_unclaimed: Callable[[LiveTurn, str, tuple[Any, ...]], Awaitable[None]],
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Drive the turn; an end nobody came back for within `keep_for` seconds goes
        to `on_unclaimed` (the last hook, to be written to the task directly)."""
        task_status.started()

        async def queued() -> None:
            await self.note("waiting for the previous message of this conversation")

        try:
            async with conversations.turn(
                key, message, agent_id=agent_id, source=source, on_queued=queued
            ) as turn:
                self.turn = turn
                if turn.merged:
                    await self.finish(_MERGED)
                else:
                    await drive(turn, self, conversations)
        except Exception:  # outermost boundary of a turn: report it, never crash the adapter
            logger.exception("A2A task %s failed in the bridge", self.task_id)
            await self.fail(failure_of(None), "")
        finally:
            self.ended = True
            if not self._attached:
                self._released.set()
        if not self._pending:
            return
        try:
            with anyio.move_on_after(keep_for):
                await self._collected.wait()
        finally:
            # Also on shutdown: the end is written to the task rather than lost.
            if self._pending and self._pending[-1][0] in _ENDS:
                name, args = self._pending[-1]
                with anyio.CancelScope(shield=True), anyio.move_on_after(10):
                    await on_unclaimed(self, name, args)
