"""An answer as A2A shows it: the chat layer's `AnswerView` as task states and artifact
updates (steps and interruptions as status messages, the answer as one artifact)."""

from __future__ import annotations

import uuid

from a2a.server.tasks import TaskUpdater
from a2a.types.a2a_pb2 import Message, Part, TaskState

from bridge.chat import ApprovalRequest, Failure, Progress, SignInRequest, Step

__all__ = ["A2AAnswerView", "agent_message"]


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
        self._streamed = ""

    @property
    def _u(self) -> TaskUpdater:
        if self.updater is None:
            raise RuntimeError("no A2A request is attached to this answer")
        return self.updater

    async def start(self) -> None:
        await self._u.start_work()

    async def text(self, delta: str, streamed: str) -> None:
        self._streamed = streamed
        await self._u.add_artifact(
            [Part(text=delta)],
            artifact_id=self.artifact_id,
            name="answer",
            append=self._has_artifact,
        )
        self._has_artifact = True

    async def progress(self, step: Step, progress: Progress) -> None:
        await self.note(step.line)

    async def note(self, line: str) -> None:
        """A status line while the task works."""
        await self._u.update_status(TaskState.TASK_STATE_WORKING, agent_message(self._u, line))

    async def approval(self, request: ApprovalRequest) -> None:
        await self._u.requires_input(agent_message(self._u, request.text, request.url))

    async def sign_in(self, request: SignInRequest) -> None:
        await self._u.requires_auth(agent_message(self._u, request.text, request.url))

    async def _answer(self, text: str) -> None:
        if self._has_artifact and text == self._streamed:
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

    async def fail(self, failure: Failure, streamed: str) -> None:
        if streamed:
            await self._answer(streamed)
        note = agent_message(self._u, failure.text)
        if failure.kind == "stopped":
            await self._u.cancel(note)
        else:
            await self._u.failed(note)
