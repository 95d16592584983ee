"""The values a conversation turn is made of: its key, the inbound message, and the `Turn`
an adapter iterates, which reports to a `TurnObserver` (the conversations service)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel

from bridge import errors
from bridge.client import Run
from bridge.events import Event, TaskCreated, TaskFinished, TextDelta
from bridge.models import InvokeOptions, Task, User
from bridge.stores import InFlightTurn, PlatformMessage, ThreadRef

__all__ = ["ConversationKey", "Message", "Turn", "TurnObserver"]


@dataclass(frozen=True, slots=True)
class ConversationKey:
    """Where a conversation lives: adapter, space (workspace/channel, chat), thread."""

    adapter: str
    space: str
    thread: str

    def __str__(self) -> str:
        return f"{self.adapter}|{self.space}|{self.thread}"

    @property
    def space_prefix(self) -> str:
        return f"{self.adapter}|{self.space}|"

    @classmethod
    def parse(cls, text: str) -> ConversationKey:
        adapter, space, thread = text.split("|", 2)
        return cls(adapter, space, thread)


@dataclass(frozen=True, slots=True)
class Message:
    """One inbound message, as the adapter understood it."""

    text: str
    user: User | None = None
    principal: str | None = None
    files: tuple[str, ...] = ()
    reply: dict[str, Any] | BaseModel = field(default_factory=dict)
    """Where the answer goes: the adapter's own reply model (see `InFlightTurn.reply_as`)."""
    options: InvokeOptions | None = None


class TurnObserver(Protocol):
    """What a `Turn` reports while it is iterated (the conversations service implements it)."""

    async def recorded(self, turn: Turn) -> None:
        """`turn.record` changed: keep it in the ledger."""

    async def created(self, turn: Turn, event: TaskCreated) -> None:
        """The turn reached the platform as `event.task`."""

    def first_text(self, turn: Turn) -> None:
        """The first answer text arrived."""

    def ended(self, turn: Turn, status: str, error: BaseException | None = None) -> None:
        """The turn ended upstream with `status`."""

    async def progressed(self, turn: Turn) -> None:
        """An event arrived (leases are renewed when due)."""


class Turn:
    """One turn being run. Iterate for events; `merged` turns (coalesce) yield none."""

    def __init__(
        self,
        observer: TurnObserver,
        record: InFlightTurn,
        thread: str | None,
        principal: str | None,
    ) -> None:
        self._observer = observer
        self.record = record
        self.principal = principal
        self.thread = thread
        self.queued = False
        self.merged = False
        self.is_recorded = True
        """Kept in the in-flight ledger for recovery (`Conversations.turn(recorded=...)`)."""
        self.is_mapped = True
        """Its key is mapped to its thread (False for `one_shot` turns)."""
        self.run: Run | None = None
        self.task: Task | None = None
        self.previous: ThreadRef | None = None
        self.received_at = time.monotonic()
        self.first_text_at: float | None = None

    @property
    def task_id(self) -> str | None:
        return self.run.task_id if self.run else self.thread

    async def set_reply(self, address: BaseModel | None = None, /, **reply: Any) -> None:
        """Record where the answer is being drawn (used by recovery after a crash): the
        adapter's reply model, or (older form) keys merged into the recorded reply."""
        fields = address.model_dump(mode="json") if address is not None else {}
        update = {**self.record.reply, **fields, **reply}
        self.record = self.record.model_copy(update={"reply": update})
        await self._observer.recorded(self)

    async def add_message(self, message: PlatformMessage) -> None:
        """Record a platform message the answer is drawn in (recovery finishes it in place)."""
        if message not in self.record.messages:
            self.record = self.record.model_copy(
                update={"messages": (*self.record.messages, message)}
            )
            await self._observer.recorded(self)

    async def __aiter__(self) -> AsyncIterator[Event]:
        if self.merged or self.run is None:
            return
        observer = self._observer
        try:
            async for event in self.run:
                if isinstance(event, TaskCreated):
                    await observer.created(self, event)
                elif self.first_text_at is None and isinstance(event, TextDelta):
                    self.first_text_at = time.monotonic()
                    observer.first_text(self)
                elif isinstance(event, TaskFinished):
                    self.task = event.task
                    observer.ended(self, "completed")
                await observer.progressed(self)
                yield event
        except errors.RunFailedError as exc:
            observer.ended(self, exc.status)
            raise
        except errors.UpstreamError as exc:
            observer.ended(self, "upstream_error", exc)
            raise
