"""Telling, after an invoke failed without a clear answer, whether the platform started the turn.

A new thread gets an id the bridge chooses, so `GET /v1/tasks/{id}` answers; a continued
thread is checked against its history: the messages after the count taken before the
invoke include this turn's text as a user message only if the turn was appended.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import anyio

from bridge import errors
from bridge.models import Task

if TYPE_CHECKING:
    from bridge.client._client import AgentClient

__all__ = ["Attempts", "CallerIds", "Checkpoint", "find_turn", "is_ambiguous", "is_id_refusal"]

logger = logging.getLogger("bridge.client")

CallerIdMode = Literal["auto", "on", "off"]


class CallerIds:
    """Whether the platform keeps the ids the bridge chooses for new threads.

    `on` trusts it from the start; `off` never sends one; `auto` sends one and trusts a
    missing task to mean "not started" once the platform has kept a chosen id. A platform
    seen ignoring or refusing a chosen id switches them off for the life of the client.
    """

    def __init__(self, mode: CallerIdMode) -> None:
        self.mode = mode
        self.kept: bool | None = {"auto": None, "on": True, "off": False}[mode]
        self._decided: anyio.Event | None = None

    @property
    def is_enabled(self) -> bool:
        return self.kept is not False

    def choose(self) -> str | None:
        """A fresh id for a new thread, or None when the platform is to choose it."""
        return str(uuid.uuid4()) if self.is_enabled else None

    def observe(self, chosen: str, created: str) -> None:
        """A new thread was created: did the platform keep the id it was given?"""
        if chosen == created:
            if self.kept is None:
                self._decide(True)
        elif self.kept is not False:
            logger.warning(
                "the platform gave new thread %s the id %s instead of the one chosen; "
                "new threads get platform ids from now on",
                chosen,
                created,
            )
            self._decide(False)

    def refused(self, reason: str) -> None:
        """The platform refused an invoke for its chosen id and took it without one."""
        if self.kept is not False:
            logger.warning("the platform refused a chosen thread id (%s); not sent again", reason)
            self._decide(False)

    def _decide(self, kept: bool) -> None:
        self.kept = kept
        if self._decided is not None:
            self._decided.set()

    async def trusted(self, wait: float) -> bool:
        """Whether a missing task proves "not started"; while undecided, wait up to `wait`
        seconds for another new thread to show that the platform keeps chosen ids."""
        if self.kept is None:
            if self._decided is None:
                self._decided = anyio.Event()
            with anyio.move_on_after(wait):
                await self._decided.wait()
        return self.kept is True


@dataclass
class Checkpoint:
    """What identifies one turn upstream before its invoke is sent: record it first, and
    after a crash `AgentClient.find_turn` tells whether the turn started.

    `task_id` is the chosen id of a new thread (None when the platform chooses it) or the
    continued thread's id; `baseline` the number of messages that thread had before.
    """

    text: str
    task_id: str | None
    is_new: bool
    baseline: int | None = None

    @classmethod
    async def take(
        cls, client: AgentClient, text: str, thread: str | None, caller_ids: CallerIds
    ) -> Checkpoint:
        if thread is None:
            return cls(text, caller_ids.choose(), is_new=True)
        try:
            baseline = await client.thread_length(thread)
        except errors.NotFoundError:
            baseline = 0
        except errors.UpstreamError as exc:
            # The turn still runs; only an ambiguous failure of it could not be checked.
            logger.warning("thread %s: no message count before the turn: %s", thread, str(exc))
            baseline = None
        return cls(text, thread, is_new=False, baseline=baseline)


def is_ambiguous(exc: errors.UpstreamError, *, retrying: bool) -> bool:
    """Whether the platform may have started the turn although the invoke failed.

    A request that never left (connect errors) or was refused outright (503, 429, 4xx)
    started nothing. A 409 on a re-sent invoke is most likely the first attempt's turn."""
    if isinstance(exc, errors.UpstreamConnectError):
        return False
    if isinstance(exc, errors.TransportError):
        return True
    if isinstance(exc, errors.ServerError):
        return exc.status_code != 503
    return retrying and isinstance(exc, errors.TurnConflictError)


def is_id_refusal(exc: errors.UpstreamError) -> bool:
    """Whether a refused new-thread invoke may have been refused for its chosen id."""
    if isinstance(exc, errors.NotFoundError):
        return True
    if isinstance(exc, errors.ValidationError):
        return any("id" in (problem.get("loc") or ()) for problem in exc.errors)
    return False


async def find_turn(
    client: AgentClient,
    checkpoint: Checkpoint,
    caller_ids: CallerIds,
    error: errors.UpstreamError | None = None,
) -> Task | None:
    """The task of the turn when the platform started it, None when it surely did not.

    Raises:
        UpstreamError: `error` itself (or a `TurnUnknownError` without one), when the
            platform's answers cannot tell.
    """
    if error is None:
        error = errors.TurnUnknownError(
            f"could not tell whether the turn on {checkpoint.task_id or 'a new thread'} started",
            task_id=checkpoint.task_id,
        )
    if checkpoint.task_id is None:
        raise error
    try:
        task = await _task_or_none(client, checkpoint.task_id)
        if checkpoint.is_new:
            if task is not None:
                return task
            if not await caller_ids.trusted(client.config.idle_timeout):
                raise error
            # Asked again: the wait may have let a slow platform create it.
            return await _task_or_none(client, checkpoint.task_id)
        if task is None or checkpoint.baseline is None:
            raise error
        if not task.is_terminal:
            return task  # turns of a thread run one at a time: the running one is this one
        messages = await client.get_thread(checkpoint.task_id)
    except errors.UpstreamError as exc:
        if exc is error:
            raise
        # A string, not the exception: a kept log record must not keep its frames alive.
        logger.warning(
            "task %s: could not check the failed invoke: %s", checkpoint.task_id, str(exc)
        )
        raise error from None
    wanted = checkpoint.text.strip()
    appended = any(
        message.role == "user" and str(message.content).strip() == wanted
        for message in messages[checkpoint.baseline :]
    )
    return task if appended else None


async def _task_or_none(client: AgentClient, task_id: str) -> Task | None:
    try:
        return await client.get_task(task_id)
    except errors.NotFoundError:
        return None


class Attempts:
    """The attempts of one invoke: the id each one sends, and what a failure leads to."""

    def __init__(self, client: AgentClient, checkpoint: Checkpoint, caller_ids: CallerIds) -> None:
        self.client = client
        self.checkpoint = checkpoint
        self.caller_ids = caller_ids
        self.count = 0
        self.id_refused = False

    @classmethod
    async def start(
        cls,
        client: AgentClient,
        text: str,
        thread: str | None,
        caller_ids: CallerIds,
        checkpoint: Checkpoint | None = None,
    ) -> Attempts:
        if checkpoint is None:
            checkpoint = await Checkpoint.take(client, text, thread, caller_ids)
        return cls(client, checkpoint, caller_ids)

    def next_id(self) -> str | None:
        """Count one more attempt; the thread id its invoke sends (None: none)."""
        self.count += 1
        return None if self.id_refused else self.checkpoint.task_id

    def is_ambiguous(self, exc: errors.UpstreamError) -> bool:
        return is_ambiguous(exc, retrying=self.count > 1)

    def drop_refused_id(self, exc: errors.UpstreamError) -> bool:
        """Whether to send the invoke again without the chosen id it was refused for."""
        checkpoint = self.checkpoint
        if self.id_refused or not checkpoint.is_new or not checkpoint.task_id:
            return False
        if not is_id_refusal(exc):
            return False
        self.id_refused = True
        self.count -= 1  # the platform refused the id, not the turn
        logger.info("new thread refused with a chosen id (%s); sending it without", str(exc))
        return True

    def created(self, task_id: str) -> None:
        """The platform announced the turn's task: learn whether it kept the chosen id."""
        checkpoint = self.checkpoint
        if not checkpoint.is_new:
            return
        if self.id_refused:
            self.caller_ids.refused(f"the invoke that created {task_id} had none")
        elif checkpoint.task_id is not None:
            self.caller_ids.observe(checkpoint.task_id, task_id)
        checkpoint.task_id = task_id

    async def resolve(self, error: errors.UpstreamError) -> Task | None:
        """After an ambiguous failure: the task of the turn that started anyway, or None
        to send the invoke again.

        Raises:
            UpstreamError: `error`, when the platform cannot tell, or no attempt is left.
        """
        client = self.client
        await client.backoff(self.count, None, f"the turn may not have started: {error}")
        task = await find_turn(client, self.checkpoint, self.caller_ids, error)
        if task is not None:
            logger.info("task %s: the turn started despite the failed invoke", task.id)
            return task
        if self.count >= client.config.max_attempts:
            raise error
        logger.info("task %s: the turn did not start; sending it again", self.checkpoint.task_id)
        return None
