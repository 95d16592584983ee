"""Agent runs: one conversation turn consumed in the background, observable while it runs.

A tool call, the run tools (`get_run`) and cancellation all look at the same `AgentRun`:
its latest steps, the text written so far, what it needs from the user, the final answer.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Literal

import anyio
import anyio.abc

from bridge import errors
from bridge.chat import ApprovalRequest, Failure, Progress, SignInRequest, Step, drive
from bridge.conversations import ConversationKey, Conversations, Message, Turn
from bridge.models import Agent

__all__ = ["AgentRun", "Attention", "RunRegistry", "RunView", "Status", "step_line"]

logger = logging.getLogger(__name__)

Status = Literal["working", "completed", "failed", "error", "stopped", "paused", "login_required"]
_FAILED: dict[str, Status] = {"failed": "failed", "error": "error", "stopped": "stopped"}


@dataclass(frozen=True)
class Attention:
    """Something the user must do before the agent can go on."""

    kind: Literal["login", "approval"]
    message: str
    url: str | None = None


def step_line(step: Step) -> str:
    """A step as one MCP progress message."""
    if step.kind == "thinking":
        return f"thinking: {step.label}"
    if step.kind == "tool" and step.state == "running":
        return f"calling tool {step.label}"
    if step.kind == "tool":
        return f"tool {step.label} {step.state}"
    return step.line


class AgentRun:
    """The observable state of one agent turn. Wait on `changed()` for the next update."""

    def __init__(
        self,
        agent: Agent,
        key: ConversationKey,
        principal: str,
        *,
        ephemeral: bool,
        one_shot: bool = False,
    ) -> None:
        self.id = f"run_{uuid.uuid4().hex}"
        self.agent = agent
        self.key = key
        self.principal = principal
        self.ephemeral = ephemeral
        """The key is this call's alone: forgotten when the run ends."""
        self.one_shot = one_shot
        """Ephemeral, and on a new thread: the key is never stored at all."""
        self.status: Status = "working"
        self.steps: list[str] = []
        self.text = ""
        self.answer: str | None = None
        self.error: str | None = None
        self.task_id: str | None = None
        self.conversation: str | None = None
        self.attention: Attention | None = None
        self.finished_at: float | None = None
        self.done = anyio.Event()
        # Made when someone takes one (most changes of a run have nobody waiting on them).
        self._changed: anyio.Event | None = None
        self._milestone: anyio.Event | None = None
        self._scope = anyio.CancelScope()

    @property
    def step(self) -> str | None:
        return self.steps[-1] if self.steps else None

    def changed(self) -> anyio.Event:
        """An event set at the next change of this run (take it before reading the state)."""
        if self._changed is None:
            self._changed = anyio.Event()
        return self._changed

    def milestone(self) -> anyio.Event:
        """An event set at the next change of status or attention, or at the end (take it
        before reading the state): all a caller that shows no progress waits for."""
        if self._milestone is None:
            self._milestone = anyio.Event()
        return self._milestone

    def notify(self, *, milestone: bool = False) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None
        if milestone and self._milestone is not None:
            self._milestone.set()
            self._milestone = None

    def wait_for_user(self, attention: Attention, status: Status) -> None:
        """The run waits for its user (approval, sign-in)."""
        self.attention, self.status = attention, status
        self.steps.append(f"{status.replace('_', ' ')}: {attention.message}")
        self.notify(milestone=True)

    def finish(
        self, status: Status, *, answer: str | None = None, error: str | None = None
    ) -> None:
        if self.done.is_set():
            return
        self.status, self.answer, self.error = status, answer, error
        self.attention = None
        self.finished_at = time.monotonic()
        self.done.set()
        self.notify(milestone=True)

    def cancel(self) -> None:
        """Stop the run: the upstream task is stopped, then `done` is set."""
        self._scope.cancel()


class RunView:
    """The chat layer's `AnswerView` of one run: each hook updates the run's state."""

    def __init__(self, run: AgentRun, turn: Turn, conversations: Conversations) -> None:
        self.run, self.turn, self.conversations = run, turn, conversations

    def _sync(self) -> None:
        run, task_run = self.run, self.turn.run
        if task_run is not None and task_run.task_id and run.task_id is None:
            run.task_id = task_run.task_id
        if run.task_id and run.conversation is None:
            run.conversation = self.conversations.seal(run.agent.id, run.task_id, run.principal)

    async def start(self) -> None:
        self._sync()

    async def text(self, delta: str, streamed: str) -> None:
        self._sync()
        self.run.text = streamed
        self.run.notify()

    async def progress(self, step: Step, progress: Progress) -> None:
        self._sync()
        run = self.run
        run.steps.append(step_line(step))
        going_on = step.kind == "answered" and run.attention is not None
        if going_on:
            run.attention, run.status = None, "working"
        run.notify(milestone=going_on)

    async def approval(self, request: ApprovalRequest) -> None:
        self._sync()
        self.run.wait_for_user(Attention("approval", request.text, request.url), "paused")

    async def sign_in(self, request: SignInRequest) -> None:
        self._sync()
        self.run.wait_for_user(Attention("login", request.text, request.url), "login_required")

    async def finish(self, answer: str) -> None:
        self._sync()
        self.run.finish("completed", answer=answer)

    async def fail(self, failure: Failure, streamed: str) -> None:
        self._sync()
        status = _FAILED.get(failure.status, "failed") if failure.kind != "not_shown" else "failed"
        self.run.finish(status, answer=streamed or None, error=failure.text)


class RunRegistry:
    """Starts runs in a long-lived task group and keeps them readable for a while."""

    def __init__(
        self,
        conversations: Conversations,
        group: anyio.abc.TaskGroup,
        *,
        ttl: float,
        max_runs: int,
    ) -> None:
        self._conversations = conversations
        self._group = group
        self._ttl = ttl
        self._max_runs = max_runs
        self._runs: dict[str, AgentRun] = {}
        self._pruned_at = 0.0

    @classmethod
    @asynccontextmanager
    async def open(
        cls, conversations: Conversations, *, ttl: float, max_runs: int
    ) -> AsyncIterator[RunRegistry]:
        async with anyio.create_task_group() as group:
            yield cls(conversations, group, ttl=ttl, max_runs=max_runs)
            group.cancel_scope.cancel()

    def forget(self, run: AgentRun) -> None:
        """Drop a finished run nobody can ask for (its call showed the whole result)."""
        if run.done.is_set():
            self._runs.pop(run.id, None)

    def get(self, run_id: str, principal: str) -> AgentRun | None:
        """The run, if it exists and belongs to `principal`."""
        run = self._runs.get(run_id)
        return run if run is not None and run.principal == principal else None

    async def start(
        self,
        agent: Agent,
        message: Message,
        key: ConversationKey,
        principal: str,
        *,
        ephemeral: bool,
        one_shot: bool = False,
    ) -> AgentRun:
        self._prune()
        run = AgentRun(agent, key, principal, ephemeral=ephemeral, one_shot=one_shot)
        self._runs[run.id] = run
        self._group.start_soon(self._consume, run, message)
        return run

    def _prune(self) -> None:
        now = time.monotonic()
        if len(self._runs) < self._max_runs and now - self._pruned_at < min(self._ttl, 10.0):
            return
        self._pruned_at = now
        for run_id, run in list(self._runs.items()):
            if run.finished_at is not None and now - run.finished_at > self._ttl:
                del self._runs[run_id]
        finished = [run for run in self._runs.values() if run.finished_at is not None]
        for run in sorted(finished, key=lambda r: r.finished_at or 0.0):
            if len(self._runs) < self._max_runs:
                break
            del self._runs[run.id]

    async def _consume(self, run: AgentRun, message: Message) -> None:
        # The run's scope exists before its task starts: a cancel that comes first still counts.
        with run._scope as scope:
            try:
                await self._turn(run, message)
            except Exception:  # outermost boundary of a run: report, never crash the server
                logger.exception("run %s of agent %s failed", run.id, run.agent.name)
                run.finish("failed", error="the bridge failed while running the agent")
        with anyio.CancelScope(shield=True):
            if scope.cancelled_caught and not run.done.is_set():
                await self._stop_upstream(run)
                run.finish("stopped", answer=run.text or None, error="the run was cancelled")
            if run.ephemeral and not run.one_shot:
                await self._conversations.reset(run.key)

    async def _turn(self, run: AgentRun, message: Message) -> None:
        conversations = self._conversations
        # No in-flight record: a call is not delivered after a crash (its client is gone).
        async with conversations.turn(
            run.key,
            message,
            agent_id=run.agent.id,
            source="mcp",
            recorded=False,
            one_shot=run.one_shot,
        ) as turn:
            await drive(turn, RunView(run, turn, conversations), conversations)

    async def _stop_upstream(self, run: AgentRun) -> None:
        if run.task_id is None:
            return
        with anyio.move_on_after(10):
            try:
                await self._conversations.client.stop_task(run.task_id)
            except errors.UpstreamError as exc:
                logger.warning("could not stop task %s of run %s: %s", run.task_id, run.id, exc)
