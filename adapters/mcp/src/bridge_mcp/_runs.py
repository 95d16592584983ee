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
from bridge.conversations import ConversationKey, Conversations, Message
from bridge.events import (
    AnalysisRecorded,
    AuthEventReceived,
    Event,
    ResumedByPolling,
    TaskCreated,
    TaskUpdated,
    TextDelta,
    ThoughtRecorded,
    ToolCallFinished,
    ToolCallRequested,
)
from bridge.models import Agent

__all__ = ["AgentRun", "Attention", "RunRegistry", "Status"]

logger = logging.getLogger(__name__)

Status = Literal["working", "completed", "failed", "error", "stopped", "paused", "login_required"]
_STEP_CHARS = 200
_FAILED: dict[str, Status] = {"failed": "failed", "error": "error", "stopped": "stopped"}


@dataclass(frozen=True)
class Attention:
    """Something the user must do before the agent can go on."""

    kind: Literal["login", "approval"]
    message: str
    url: str | None = None


def _short(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _STEP_CHARS else line[: _STEP_CHARS - 1] + "…"


class AgentRun:
    """The observable state of one agent turn. Wait on `changed()` for the next update."""

    def __init__(
        self, agent: Agent, key: ConversationKey, principal: str, *, ephemeral: bool
    ) -> None:
        self.id = f"run_{uuid.uuid4().hex}"
        self.agent = agent
        self.key = key
        self.principal = principal
        self.ephemeral = ephemeral
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
        self._changed = anyio.Event()
        self._milestone = anyio.Event()
        self._scope: anyio.CancelScope | None = None

    @property
    def step(self) -> str | None:
        return self.steps[-1] if self.steps else None

    def changed(self) -> anyio.Event:
        """An event set at the next change of this run (take it before reading the state)."""
        return self._changed

    def milestone(self) -> anyio.Event:
        """An event set at the next change of status or attention, or at the end (take it
        before reading the state): all a caller that shows no progress waits for."""
        return self._milestone

    def _notify(self, *, milestone: bool = False) -> None:
        self._changed.set()
        self._changed = anyio.Event()
        if milestone:
            self._milestone.set()
            self._milestone = anyio.Event()

    def _add_step(self, text: str) -> None:
        self.steps.append(_short(text))

    def apply(self, event: Event) -> None:
        """Fold one agent event into the run's state."""
        before = (self.status, self.attention)
        if self._fold(event):
            self._notify(milestone=(self.status, self.attention) != before)

    def _fold(self, event: Event) -> bool:
        if isinstance(event, TaskCreated):
            self.task_id = event.task.id
        elif isinstance(event, ThoughtRecorded | AnalysisRecorded):
            if event.text:
                self._add_step(f"thinking: {event.text}")
        elif isinstance(event, ToolCallRequested):
            self._add_step(f"calling tool {event.name}")
        elif isinstance(event, ToolCallFinished):
            self._add_step(f"tool {event.name} {'failed' if event.is_error else 'done'}")
        elif isinstance(event, TextDelta):
            self.text += event.text
        elif isinstance(event, TaskUpdated):
            self._task_updated(event)
        elif isinstance(event, AuthEventReceived):
            self._auth_event(event)
        elif isinstance(event, ResumedByPolling):
            self._add_step("lost the agent's stream; waiting for it to finish")
        else:
            return False
        return True

    def _task_updated(self, event: TaskUpdated) -> None:
        task = event.task
        if task.is_paused:
            request = task.hitl_request or {}
            title = str(request.get("title") or "Approval required")
            content = str(request.get("content") or request.get("description") or "")
            url = request.get("url") or request.get("approval_url")
            message = f"{title}: {content}" if content else title
            self.attention = Attention("approval", message, str(url) if url else None)
            self.status = "paused"
            self._add_step(f"paused, waiting for approval: {message}")
        elif self.status == "paused":
            self.attention, self.status = None, "working"
            self._add_step("approval received; working")

    def _auth_event(self, event: AuthEventReceived) -> None:
        if event.is_login_required:
            server = event.server_name or "a connector"
            self.attention = Attention(
                "login", f"Sign in to {server} to let the agent go on.", event.url
            )
            self.status = "login_required"
            self._add_step(f"sign-in needed for {server}: {event.url}")
        elif event.kind == "token_ready" and self.status == "login_required":
            self.attention, self.status = None, "working"
            self._add_step("signed in; working")

    def finish(
        self, status: Status, *, answer: str | None = None, error: str | None = None
    ) -> None:
        if self.done.is_set():
            return
        self.status, self.answer, self.error = status, answer, error
        self.attention = None
        self.finished_at = time.monotonic()
        self.done.set()
        self._notify(milestone=True)

    def cancel(self) -> None:
        """Stop the run: the upstream task is stopped, then `done` is set."""
        if self._scope is not None:
            self._scope.cancel()


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
    ) -> AgentRun:
        self._prune()
        run = AgentRun(agent, key, principal, ephemeral=ephemeral)
        self._runs[run.id] = run
        await self._group.start(self._consume, run, message)
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

    async def _consume(
        self, run: AgentRun, message: Message, *, task_status: anyio.abc.TaskStatus[None]
    ) -> None:
        with anyio.CancelScope() as scope:
            run._scope = scope
            task_status.started()
            try:
                await self._turn(run, message)
            except Exception:  # outermost boundary of a run: report, never crash the server
                logger.exception("run %s of agent %s failed", run.id, run.agent.name)
                run.finish("failed", error="the bridge failed while running the agent")
        with anyio.CancelScope(shield=True):
            if scope.cancelled_caught and not run.done.is_set():
                await self._stop_upstream(run)
                run.finish("stopped", answer=run.text or None, error="the run was cancelled")
            if run.ephemeral:
                await self._conversations.reset(run.key)

    async def _turn(self, run: AgentRun, message: Message) -> None:
        conversations = self._conversations
        async with conversations.turn(
            run.key, message, agent_id=run.agent.id, source="mcp"
        ) as turn:
            try:
                async for event in turn:
                    run.apply(event)
                    if run.task_id and run.conversation is None:
                        run.conversation = conversations.seal(
                            run.agent.id, run.task_id, run.principal
                        )
                answer = turn.task.result if turn.task and turn.task.result else run.text
                run.finish("completed", answer=answer)
            except errors.RunFailedError as exc:
                run.task_id = exc.task_id or run.task_id
                if run.task_id and run.conversation is None:
                    run.conversation = conversations.seal(run.agent.id, run.task_id, run.principal)
                detail = exc.task.result or "no details"
                run.finish(
                    _FAILED.get(exc.status, "failed"),
                    answer=run.text or None,
                    error=f"the agent's turn ended {exc.status}: {detail}",
                )
            except errors.UpstreamError as exc:
                run.finish("failed", error=f"the agent platform did not answer: {exc}")

    async def _stop_upstream(self, run: AgentRun) -> None:
        if run.task_id is None:
            return
        with anyio.move_on_after(10):
            try:
                await self._conversations.client.stop_task(run.task_id)
            except errors.UpstreamError as exc:
                logger.warning("could not stop task %s of run %s: %s", run.task_id, run.id, exc)
