"""An answer as A2A shows it: the `AnswerView` hooks a surface implements, the driver that
feeds them from a turn's events, and the A2A view (task states and artifact updates).

The driver and the protocol have the shape of the core's shared chat layer (start, text,
progress, approval prompt, sign-in link, finish, fail; the final answer is the task's
`result`, else the streamed text), so this view moves onto that layer unchanged.
"""

from __future__ import annotations

import uuid
from typing import Protocol

from a2a.server.tasks import TaskUpdater
from a2a.types.a2a_pb2 import Message, Part, TaskState

from bridge import errors
from bridge.conversations import Turn
from bridge.events import (
    AnalysisRecorded,
    AuthEventReceived,
    Event,
    PlanUpdated,
    ResumedByPolling,
    SubAgentTriggered,
    TaskUpdated,
    TextDelta,
    ThoughtRecorded,
    ToolCallFinished,
    ToolCallRequested,
)
from bridge.models import Task

__all__ = ["A2AAnswerView", "AnswerView", "drive", "failure_text", "final_answer"]

_STEP_CHARS = 300


class AnswerView(Protocol):
    """How one surface shows one answer while it is written."""

    async def start(self) -> None: ...

    async def text(self, delta: str) -> None: ...

    async def progress(self, step: str) -> None: ...

    async def approval(self, prompt: str, url: str | None) -> None: ...

    async def sign_in(self, url: str, server: str) -> None: ...

    async def finish(self, answer: str) -> None: ...

    async def fail(self, status: str, message: str, partial: str) -> None: ...


def final_answer(task: Task | None, streamed: str) -> str:
    """The one final-answer rule: the task's `result`, else the text streamed so far."""
    return task.result if task is not None and task.result else streamed


def failure_text(status: str, task: Task | None) -> str:
    """The one wording of a turn that did not complete."""
    if status == "stopped":
        return "The agent's turn was stopped."
    detail = task.result if task is not None and task.result else "no details"
    return f"The agent's turn ended {status}: {detail}"


def _short(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _STEP_CHARS else line[: _STEP_CHARS - 1] + "…"


def step_of(event: Event) -> str | None:
    """The progress line an event shows, if any (the reducer from events to progress)."""
    if isinstance(event, ThoughtRecorded | AnalysisRecorded):
        return f"thinking: {_short(event.text)}" if event.text else None
    if isinstance(event, ToolCallRequested):
        return f"calling tool {event.name}"
    if isinstance(event, ToolCallFinished):
        return f"tool {event.name} {'failed' if event.is_error else 'done'}"
    if isinstance(event, PlanUpdated):
        return f"plan updated ({len(event.tasks)} steps)"
    if isinstance(event, SubAgentTriggered):
        return "asked another agent"
    if isinstance(event, ResumedByPolling):
        return "lost the agent's stream; waiting for it to finish"
    return None


def _approval_prompt(task: Task) -> tuple[str, str | None]:
    request = task.hitl_request or {}
    title = str(request.get("title") or "Approval required")
    content = str(request.get("content") or request.get("description") or "")
    url = request.get("url") or request.get("approval_url")
    return (f"{title}: {content}" if content else title), (str(url) if url else None)


async def drive(turn: Turn, view: AnswerView) -> None:
    """Feed one turn's events to `view` until it finishes or fails; never raises an
    upstream error (it becomes `fail`)."""
    streamed: list[str] = []
    waiting = False
    await view.start()
    try:
        async for event in turn:
            if isinstance(event, TextDelta):
                streamed.append(event.text)
                await view.text(event.text)
            elif isinstance(event, TaskUpdated) and event.task.is_paused:
                waiting = True
                await view.approval(*_approval_prompt(event.task))
            elif isinstance(event, AuthEventReceived) and event.is_login_required:
                waiting = True
                await view.sign_in(event.url or "", event.server_name or "a connector")
            elif waiting and isinstance(event, TaskUpdated | AuthEventReceived):
                waiting = False
                await view.progress("the user answered; working")
            elif (step := step_of(event)) is not None:
                await view.progress(step)
    except errors.RunFailedError as exc:
        await view.fail(exc.status, failure_text(exc.status, exc.task), "".join(streamed))
        return
    except errors.UpstreamError as exc:
        await view.fail("error", f"The agent platform did not answer: {exc}", "".join(streamed))
        return
    await view.finish(final_answer(turn.task, "".join(streamed)))


def agent_message(updater: TaskUpdater, text: str, url: str | None = None) -> Message:
    parts = [Part(text=text)]
    if url:
        parts.append(Part(url=url, media_type="text/html"))
    return updater.new_agent_message(parts)


class A2AAnswerView:
    """An answer as one A2A task: status updates for steps and interruptions, the answer as
    one artifact appended chunk by chunk and replaced by the final answer."""

    def __init__(self, updater: TaskUpdater | None) -> None:
        self.updater = updater
        self.artifact_id = f"answer-{uuid.uuid4().hex[:12]}"
        self._has_artifact = False
        self._streamed: list[str] = []

    @property
    def _u(self) -> TaskUpdater:
        if self.updater is None:
            raise RuntimeError("no A2A request is attached to this answer")
        return self.updater

    async def start(self) -> None:
        await self._u.start_work()

    async def text(self, delta: str) -> None:
        self._streamed.append(delta)
        await self._u.add_artifact(
            [Part(text=delta)],
            artifact_id=self.artifact_id,
            name="answer",
            append=self._has_artifact,
        )
        self._has_artifact = True

    async def progress(self, step: str) -> None:
        await self._u.update_status(TaskState.TASK_STATE_WORKING, agent_message(self._u, step))

    async def approval(self, prompt: str, url: str | None) -> None:
        await self._u.requires_input(agent_message(self._u, prompt, url))

    async def sign_in(self, url: str, server: str) -> None:
        text = f"Sign in to {server} to let the agent go on: {url}"
        await self._u.requires_auth(agent_message(self._u, text, url))

    async def _answer(self, text: str) -> None:
        if self._has_artifact and text == "".join(self._streamed):
            return  # the streamed chunks already are the answer
        # Replaces the streamed chunks: a client that appended them shows the answer once.
        await self._u.add_artifact(
            [Part(text=text)],
            artifact_id=self.artifact_id,
            name="answer",
            append=False,
            last_chunk=True,
        )

    async def finish(self, answer: str) -> None:
        await self._answer(answer)
        await self._u.complete()

    async def fail(self, status: str, message: str, partial: str) -> None:
        if partial:
            await self._answer(partial)
        note = agent_message(self._u, message)
        if status == "stopped":
            await self._u.cancel(note)
        else:
            await self._u.failed(note)
