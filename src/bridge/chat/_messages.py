"""The messages one answer is drawn in, on surfaces that edit messages in place: the first,
refreshed while the answer is written, then the overflow parts of a long final answer.
Each message's platform id is recorded the moment it exists, before anything else is sent,
so recovery finishes those messages instead of sending the answer again."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence
from functools import partial
from typing import Any, Generic, Protocol, TypeVar

import anyio

from bridge.scheduler import Bucket, Destination, OutputScheduler, Priority

__all__ = ["AnswerMessages", "MessageCalls"]

ContentT = TypeVar("ContentT")
IdT = TypeVar("IdT")
ContentT_contra = TypeVar("ContentT_contra", contravariant=True)


class MessageCalls(Protocol[ContentT_contra, IdT]):
    """What a surface does to the messages of one answer. `AnswerMessages` runs these
    through the output scheduler; each may raise `PlatformError`."""

    async def post(self, index: int, content: ContentT_contra) -> IdT:
        """Send message `index` of the answer (0 is the first) and return its platform id."""
        ...

    async def edit(self, message: IdT, content: ContentT_contra) -> None:
        """Bring a message already sent to `content`."""
        ...

    async def posted(self, index: int, message: IdT) -> None:
        """Record that message `index` exists (before the next one is sent)."""
        ...

    def buckets(self, *, posting: bool) -> Iterable[Bucket | str]:
        """The platform budgets of a send (`posting`) or of an edit."""
        ...


class AnswerMessages(Generic[ContentT, IdT]):
    """The messages of one answer on one destination: `refresh` queues redraws of the live
    first message (a queued redraw is replaced by the next), `finish` commits the final
    parts. Recovery passes the recorded `ids`: those messages are edited, never sent again.

    `key` says when two contents look the same: an edit to what a message already shows is
    skipped.
    """

    def __init__(
        self,
        scheduler: OutputScheduler,
        destination: Destination | str,
        calls: MessageCalls[ContentT, IdT],
        *,
        ids: Sequence[IdT | None] = (),
        slot: Hashable = "answer",
        key: Callable[[ContentT], Hashable] = lambda content: content,
    ) -> None:
        self.scheduler, self.destination, self.calls = scheduler, destination, calls
        self.slot, self.key = slot, key
        self.ids: list[IdT | None] = list(ids) or [None]
        """Each message's platform id, the first at 0; None until it is sent."""
        self.finished = False
        """Set when `finish` begins: no refresh is drawn after it."""
        self._shown: dict[int, Hashable] = {}
        self._drawing = anyio.Lock()

    @property
    def first(self) -> IdT | None:
        return self.ids[0]

    async def draw(self, index: int, content: ContentT) -> None:
        """Bring message `index` to `content`: edit it, or send it and record its id.
        Unscheduled: call it from inside a scheduled op. Raises `PlatformError`."""
        key = self.key(content)
        message = self.ids[index] if index < len(self.ids) else None
        if message is None:
            message = await self.calls.post(index, content)
            self.ids += [None] * (index + 1 - len(self.ids))
            self.ids[index] = message
            await self.calls.posted(index, message)
        elif self._shown.get(index) != key:
            await self.calls.edit(message, content)
        self._shown[index] = key

    def refresh(
        self,
        redraw: Callable[[], Awaitable[None]],
        *,
        destination: Destination | str | None = None,
        buckets: Iterable[Bucket | str] = (),
    ) -> None:
        """Queue `redraw` of the live answer (on `destination`, by default the answer's):
        it replaces a redraw still queued, and does nothing once `finish` has begun."""
        if self.finished:
            return

        async def guarded() -> None:
            async with self._drawing:
                if not self.finished:
                    await redraw()

        self.scheduler.post(
            destination or self.destination,
            guarded,
            slot=self.slot,
            priority=Priority.DELTA,
            buckets=buckets,
        )

    async def place(self, content: ContentT) -> None:
        """Send the first message now with `content` (a placeholder), unless it exists.
        Raises `PlatformError`."""
        if self.first is None:
            await self.submit(partial(self.draw, 0, content), posting=True)

    async def finish(
        self,
        parts: Sequence[ContentT],
        first: Callable[[ContentT], Awaitable[None]] | None = None,
    ) -> None:
        """Commit the final answer, at least one part: the first (through `first`, a
        surface's own way to end a live message, else `draw`), then each overflow part, in
        order. A redraw being drawn is waited for and queued ones come to nothing, so nothing
        preliminary is drawn after the answer. Raises `PlatformError`."""
        async with self._drawing:
            self.finished = True
        head, *rest = parts
        posting = self.first is None
        await self.submit(partial(first or partial(self.draw, 0), head), posting=posting)
        for index, part in enumerate(rest, start=1):
            posting = index >= len(self.ids) or self.ids[index] is None
            await self.submit(partial(self.draw, index, part), posting=posting)

    async def submit(self, call: Callable[[], Awaitable[Any]], *, posting: bool) -> None:
        """Run `call` on the answer's destination at FINAL priority (retried on rate limits,
        never dropped) and wait for it. Raises what the call raised."""
        await self.scheduler.submit(
            self.destination,
            call,
            slot=self.slot,
            priority=Priority.FINAL,
            buckets=self.calls.buckets(posting=posting),
        )
