"""The turn driver: one loop from a turn's events to an `AnswerView`, the small protocol a
surface implements to show an answer (start, text, progress, approval, sign-in, finish,
fail). Failures are contained here, once, for every surface."""

from __future__ import annotations

import logging
from typing import Protocol, runtime_checkable

from bridge import errors
from bridge.chat._asks import ApprovalRequest, SignInRequest, approval_request, sign_in_request
from bridge.chat._progress import Progress, Step, answered_step, step_of
from bridge.chat._wording import Failure, failure_of, final_answer
from bridge.conversations import Conversations, Turn
from bridge.events import AuthEventReceived, Event, TaskFinished, TaskUpdated, TextDelta

__all__ = ["AnswerView", "drive"]

logger = logging.getLogger(__name__)


@runtime_checkable
class AnswerView(Protocol):
    """How one surface shows one answer while it is written.

    Methods may raise `PlatformError` (the platform refused or is down): the turn then
    stays in the ledger and recovery delivers it later. Any other exception is a bug
    contained to this turn: counted, and the user is told the answer could not be shown.
    """

    async def start(self) -> None:
        """The turn began (placeholders, typing indicators)."""

    async def text(self, delta: str, streamed: str) -> None:
        """More answer text: `delta`, and everything streamed so far."""

    async def progress(self, step: Step, progress: Progress) -> None:
        """A step began or changed; `progress` holds every step so far. A turn that
        waited for its user and goes on shows an `answered` step."""

    async def approval(self, request: ApprovalRequest) -> None:
        """The turn paused for a human decision."""

    async def sign_in(self, request: SignInRequest) -> None:
        """A connector needs the user to sign in (show the link to that user only)."""

    async def finish(self, answer: str) -> None:
        """The final answer (the task's result, else the streamed text)."""

    async def fail(self, failure: Failure, streamed: str) -> None:
        """The turn ended without its answer; `streamed` is what was shown so far."""


async def drive(turn: Turn, view: AnswerView, conversations: Conversations) -> None:
    """Show one turn through `view` until it is finished or failed.

    A turn whose message was merged into another one (`coalesce`) shows nothing: the
    view is not called.

    Raises:
        PlatformError: the surface's platform failed; the turn is left to recovery.
    """
    if turn.merged:
        return
    streamed: list[str] = []
    try:
        failure = await _events(turn, view, streamed)
        if failure is None:
            await view.finish(final_answer(turn.task, "".join(streamed)))
            return
    except errors.PlatformError:
        raise
    except Exception as exc:  # a rendering bug ends this turn only, never the process
        await conversations.count_failure(turn.record, exc, stage="render")
        failure = failure_of(None)
    await view.fail(failure, "".join(streamed))


async def _events(turn: Turn, view: AnswerView, streamed: list[str]) -> Failure | None:
    progress = Progress()
    asked: set[str] = set()
    await view.start()
    try:
        async for event in turn:
            if isinstance(event, TextDelta):
                streamed.append(event.text)
                await view.text(event.text, "".join(streamed))
            elif asked and _goes_on(event):
                # The user answered what the turn waited for: a later identical ask is new.
                asked.clear()
                answered = answered_step(len(progress.steps))
                progress.add(answered)
                await view.progress(answered, progress)
            elif isinstance(event, TaskUpdated | TaskFinished):
                request = approval_request(event.task)
                if request is not None and request.text not in asked:
                    asked.add(request.text)
                    await view.approval(request)
            elif isinstance(event, AuthEventReceived):
                sign_in = sign_in_request(event)
                if sign_in is not None and sign_in.url not in asked:
                    asked.add(sign_in.url)
                    await view.sign_in(sign_in)
            elif (step := step_of(event)) is not None:
                progress.add(step)
                await view.progress(step, progress)
    except errors.UpstreamError as exc:
        if not isinstance(exc, errors.RunFailedError):
            logger.warning("turn of %s failed upstream: %s", turn.record.key, exc)
        return failure_of(exc)
    return None


def _goes_on(event: Event) -> bool:
    """Whether a turn that waited for its user is working again."""
    if isinstance(event, TaskUpdated):
        return not event.task.is_paused
    return isinstance(event, AuthEventReceived) and event.kind == "token_ready"
