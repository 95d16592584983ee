"""One streamed agent run: open the SSE stream, yield typed events, never lose the answer.

If the stream breaks, ends early or stays silent past the idle timeout after
`task_created`, the run resumes by polling `GET /v1/tasks/{id}` until the task
is terminal, announcing it with a `ResumedByPolling` event. If the invoke fails
before `task_created` in a way that leaves open whether the turn started, the
platform is asked (see `_checks`): a started turn is followed, else it is re-sent.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING

import anyio
import httpx

from bridge import errors
from bridge.client._checks import Attempts, CallerIds, Checkpoint
from bridge.client._sse import aiter_sse
from bridge.client._transport import map_transport_errors
from bridge.client._wire import parse_event_data
from bridge.events import (
    Event,
    ResumedByPolling,
    TaskCreated,
    TaskFinished,
    TaskUpdated,
    TextDelta,
    UnknownEvent,
)
from bridge.models import Task

if TYPE_CHECKING:
    from bridge.client._client import AgentClient

__all__ = ["Run"]

logger = logging.getLogger(__name__)

_LIFECYCLE = (TaskCreated, TaskUpdated, TaskFinished)
_DRAIN_SECONDS = 0.5

OpenResponse = Callable[[str | None], Awaitable[httpx.Response]]
"""Sends the invoke with the given thread id in its body (none: the platform chooses)."""


class _Ambiguous(Exception):  # an internal signal that never leaves `Run`
    """The attempt failed before `task_created`, and the turn may have started anyway."""

    def __init__(self, error: errors.UpstreamError) -> None:
        super().__init__(str(error))
        self.error = error


class Run:
    """An agent run being streamed. Use as `async with client.stream(...) as run:` and
    iterate it for events; `run.task` is the completed task afterwards.

    Iteration raises `RunFailedError` when the turn ends failed, error or stopped,
    and `UpstreamError` subclasses when no task could be started.
    """

    def __init__(
        self,
        client: AgentClient,
        open_response: OpenResponse,
        *,
        text: str,
        thread: str | None,
        caller_ids: CallerIds,
        stop_on_cancel: bool,
        checkpoint: Checkpoint | None = None,
    ) -> None:
        self._checkpoint = checkpoint
        self._client = client
        self._open = open_response
        self._text = text
        self._thread = thread
        self._caller_ids = caller_ids
        self._attempts: Attempts | None = None
        self._stop_on_cancel = stop_on_cancel
        self._response: httpx.Response | None = None
        self._events: AsyncIterator[Event] | None = None
        self.task_id: str | None = thread
        self.task: Task | None = None
        self.text_parts: list[str] = []
        self.resumed_by_polling = False
        self._created = False
        self._failed = False
        self._chunks: AsyncIterator[bytes] | None = None

    @property
    def text(self) -> str:
        """The streamed text so far (the final answer is `task.result`)."""
        return "".join(self.text_parts)

    @property
    def is_finished(self) -> bool:
        return self.task is not None

    async def __aenter__(self) -> Run:
        self._events = self._generate()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP stream (returning the connection to the pool); with
        `stop_on_cancel`, stop the upstream task of a run left unfinished."""
        with anyio.CancelScope(shield=True):
            if self._events is not None:
                await self._events.aclose()  # type: ignore[attr-defined]
            await self._close_response()
            task_id = self.task_id
            if (
                self._stop_on_cancel
                and task_id
                and self._created
                and self.task is None
                and not self._failed
            ):
                with anyio.move_on_after(5):
                    try:
                        await self._client.stop_task(task_id)
                    except errors.UpstreamError as exc:
                        logger.warning("could not stop task %s: %s", self.task_id, exc)

    async def _close_response(self) -> None:
        response = self._response
        if response is None or response.is_closed:
            return
        if self.task is not None and self._chunks is not None:
            # The turn is over: read the (normally empty) rest of the body, so that the
            # connection goes back to the pool instead of being closed.
            with anyio.move_on_after(_DRAIN_SECONDS), contextlib.suppress(httpx.HTTPError):
                async for _ in self._chunks:
                    pass
        await response.aclose()

    def __aiter__(self) -> AsyncIterator[Event]:
        if self._events is None:
            raise RuntimeError("use 'async with client.stream(...) as run' before iterating")
        return self._events

    async def result(self) -> Task:
        """Consume the remaining events and return the completed task.

        Raises:
            RunFailedError: the turn ended failed, error or stopped.
        """
        async for _ in self:
            pass
        if self.task is None:  # pragma: no cover - the generator always sets it or raises
            raise errors.StreamError("run ended without a task", task_id=self.task_id)
        return self.task

    async def _generate(self) -> AsyncIterator[Event]:
        attempts = await Attempts.start(
            self._client, self._text, self._thread, self._caller_ids, self._checkpoint
        )
        self._attempts = attempts
        while True:
            try:
                async for event in self._attempt():
                    yield event
                return
            except _Ambiguous as ambiguous:
                error = ambiguous.error
            task = await attempts.resolve(error)
            if task is not None:
                async for event in self._follow(task, str(error)):
                    yield event
                return

    async def _open_attempt(self, attempts: Attempts) -> httpx.Response:
        while True:
            try:
                return await self._open(attempts.next_id())
            except errors.UpstreamError as exc:
                if attempts.is_ambiguous(exc):
                    raise _Ambiguous(exc) from exc
                if not attempts.drop_refused_id(exc):
                    raise

    async def _attempt(self) -> AsyncIterator[Event]:
        assert self._attempts is not None
        self._response = await self._open_attempt(self._attempts)
        try:
            async for event in self._stream(self._response):
                yield event
                if self.task is not None:
                    return
            reason = "the stream ended before task_finished"
        except errors.StreamError as exc:
            if not self._created:
                raise _Ambiguous(exc) from exc
            reason = str(exc)
        finally:
            await self._close_response()
        if not self._created:
            raise _Ambiguous(errors.StreamError("the stream ended before the task was created"))
        async for event in self._poll(reason):
            yield event

    async def _follow(self, task: Task, reason: str) -> AsyncIterator[Event]:
        """Follow a turn the platform started although its invoke failed."""
        self._created = True
        self.task_id = task.id
        yield TaskCreated(task_id=task.id, task=task)
        async for event in self._poll(f"the invoke failed after the turn started ({reason})"):
            yield event

    async def _stream(self, response: httpx.Response) -> AsyncIterator[Event]:
        limit = self._client.config.max_event_bytes
        with map_transport_errors(streaming=True, task_id=self.task_id):
            self._chunks = response.aiter_raw()
            async for sse in aiter_sse(self._chunks, limit):
                event = parse_event_data(sse.data)
                if isinstance(event, TextDelta):
                    self.text_parts.append(event.text)
                    yield event
                    continue
                if isinstance(event, UnknownEvent) and event.type.startswith("invalid_"):
                    logger.warning(
                        "ignoring malformed event on task %s: %.200s", self.task_id, sse.data
                    )
                if isinstance(event, _LIFECYCLE):
                    event = self._track(event)
                if isinstance(event, TaskFinished):
                    self._finish(event.task)
                yield event

    def _track(self, event: TaskCreated | TaskUpdated | TaskFinished) -> Event:
        task_id = event.task.id
        if isinstance(event, TaskCreated) and not self._created:
            self._created = True
            self.task_id = task_id
            if self._attempts is not None:
                self._attempts.created(task_id)
        elif task_id != self.task_id:
            # A sub-agent's lifecycle must not end or redirect this run.
            return UnknownEvent(type=f"sub_{event.type}", raw=event.model_dump(mode="json"))
        return event

    def _finish(self, task: Task) -> None:
        if task.status != "completed":
            self._failed = True
            raise errors.RunFailedError(task)
        self.task = task

    async def _poll(self, reason: str) -> AsyncIterator[Event]:
        assert self.task_id is not None
        self.resumed_by_polling = True
        logger.info("task %s: resuming by polling (%s)", self.task_id, reason)
        yield ResumedByPolling(task_id=self.task_id, reason=reason)
        config = self._client.config
        delay = config.poll_interval
        last_status: str | None = None
        # A deadline, not a cancel scope around the loop: a generator must not yield inside
        # a cancel scope (closed from another task, the scope's exit would raise there).
        deadline = anyio.current_time() + config.poll_timeout
        while (remaining := deadline - anyio.current_time()) > 0:
            task = None
            with anyio.move_on_after(remaining):
                task = await self._poll_once()
            if task is not None:
                if task.is_terminal:
                    self._finish(task)
                    yield TaskFinished(task_id=task.id, task=task)
                    return
                if task.status != last_status:
                    last_status = task.status
                    yield TaskUpdated(task_id=task.id, task=task)
            await anyio.sleep(max(0.0, min(delay, deadline - anyio.current_time())))
            delay = min(delay * 2, config.poll_interval_max)
        raise errors.UpstreamTimeoutError(
            f"task {self.task_id} not finished after {config.poll_timeout:g}s of polling"
        )

    async def _poll_once(self) -> Task | None:
        assert self.task_id is not None
        try:
            return await self._client.get_task(self.task_id)
        except (errors.TransportError, errors.ServerError, errors.RateLimitError) as exc:
            logger.warning("task %s: poll failed, will retry: %s", self.task_id, exc)
            return None
