"""One budget for every outbound chat-platform call of the process.

`OutputScheduler` runs the adapters' calls one at a time per destination, under
token buckets, by priority, coalescing superseded edits and honouring `retry_after`.
"""

from __future__ import annotations

import enum
import itertools
import logging
from collections import Counter, OrderedDict
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Hashable,
    Iterable,
    Iterator,
    Mapping,
)
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, Generic, Protocol, TypeVar

import anyio
from anyio.abc import TaskGroup

from bridge.errors import PlatformRateLimitError

__all__ = [
    "DEFAULT_RATE",
    "AnyioClock",
    "Bucket",
    "Clock",
    "Delivery",
    "Destination",
    "Outcome",
    "OutputScheduler",
    "Priority",
    "Rate",
    "RateTable",
    "SchedulerStats",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Token levels are floats; this slack stops a computed wait from ending a hair short.
_EPSILON = 1e-9


class Priority(enum.IntEnum):
    """What an outbound call is for; higher runs first within a destination."""

    DELTA = 0
    """A streamed text edit; superseded by any newer op for the same slot."""
    STATUS = 1
    """A status line; superseded by any newer op for the same slot."""
    PROMPT = 2
    """An approval or sign-in prompt; never coalesced."""
    FINAL = 3
    """The final answer; never coalesced or dropped, retried on rate limits."""


_DROPPABLE = frozenset({Priority.DELTA, Priority.STATUS})


@dataclass(frozen=True)
class Rate:
    """A token bucket: `per_second` refill and at most `burst` calls at once."""

    per_second: float
    burst: int = 1

    def __post_init__(self) -> None:
        if not self.per_second > 0 or self.burst < 1:
            raise ValueError(f"invalid rate {self!r}: need per_second > 0 and burst >= 1")


DEFAULT_RATE = Rate(per_second=1.0, burst=1)
"""Used for buckets no configured name matches: one call per second."""


@dataclass(frozen=True, slots=True)
class Destination:
    """Where output goes: one space of one platform (a channel, a chat). Calls to one
    destination run one at a time and draw from its own bucket. Its string form,
    `platform:space`, is the name of that bucket and of its statistics."""

    platform: str
    space: str

    def __str__(self) -> str:
        return f"{self.platform}:{self.space}"


@dataclass(frozen=True, slots=True)
class Bucket:
    """A budget shared by the calls of one platform method in one space; in a rate table
    `Bucket.every(platform, method)` (space `*`) covers that method in every space. Its
    string form is `platform:space:method`."""

    platform: str
    space: str
    method: str

    def __str__(self) -> str:
        return f"{self.platform}:{self.space}:{self.method}"

    @classmethod
    def every(cls, platform: str, method: str) -> Bucket:
        return cls(platform, "*", method)


RateTable = Mapping[str, Rate] | Mapping[Bucket, Rate] | Mapping[Bucket | Destination | str, Rate]
"""Bucket rates by typed bucket (or destination), exact name or `fnmatch` pattern."""


class Clock(Protocol):
    """Where the scheduler reads time and sleeps; inject a fake one in tests."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class AnyioClock:
    """The event loop's monotonic clock."""

    def now(self) -> float:
        return anyio.current_time()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


class Outcome(enum.Enum):
    """How an op ended."""

    PENDING = "pending"
    SENT = "sent"
    SKIPPED = "skipped"
    """Its text equalled the text last sent to its slot; no call was made."""
    SUPERSEDED = "superseded"
    """A newer op for the same slot replaced it before it was sent."""
    FAILED = "failed"


@dataclass(frozen=True)
class SchedulerStats:
    """Counters for metrics; a snapshot taken by `OutputScheduler.stats`."""

    calls: Mapping[str, int]
    """Platform calls made, per destination (rate-limited attempts included)."""
    rate_limited: int
    """Calls answered with `PlatformRateLimitError`."""
    rate_limited_seconds: float
    """Sum of the `retry_after` pauses those answers asked for."""
    skipped: int
    """Ops not sent because their text was already on the platform."""
    coalesced: int
    """Ops superseded by a newer op for the same slot."""
    failed: int
    """Ops whose call raised something other than a rate limit."""
    pending: int
    """Ops queued or in flight right now."""


class Delivery(Generic[T]):
    """Handle of one submitted op: await `wait()` for its result."""

    def __init__(
        self,
        destination: str,
        call: Callable[[], Awaitable[T]],
        *,
        slot: Hashable | None,
        priority: Priority,
        text: str | None,
        buckets: tuple[str, ...],
        seq: int,
    ) -> None:
        self.destination = destination
        self.slot = slot
        self.priority = priority
        self.text = text
        self._call = call
        self._buckets = buckets
        self._seq = seq
        self._done = anyio.Event()
        self._outcome = Outcome.PENDING
        self._result: T | None = None
        self._error: BaseException | None = None

    @property
    def outcome(self) -> Outcome:
        return self._outcome

    async def wait(self) -> T | None:
        """The call's result; None when the op was superseded or skipped.

        Raises whatever the call raised (other than a rate limit, which is
        retried), or `anyio.ClosedResourceError` if the scheduler closed first.
        """
        await self._done.wait()
        if self._error is not None:
            raise self._error
        return self._result

    def _resolve(
        self, outcome: Outcome, result: T | None = None, error: BaseException | None = None
    ) -> None:
        if self._outcome is Outcome.PENDING:
            self._outcome, self._result, self._error = outcome, result, error
            self._done.set()


@dataclass
class _Bucket:
    rate: Rate
    tokens: float
    stamp: float
    """When `tokens` was measured; in the future while the bucket is paused."""

    def level(self, now: float) -> float:
        if now <= self.stamp:
            return self.tokens
        return min(float(self.rate.burst), self.tokens + (now - self.stamp) * self.rate.per_second)

    def ready_at(self, now: float) -> float:
        start = max(now, self.stamp)
        missing = 1.0 - self.level(start)
        return start if missing <= _EPSILON else start + missing / self.rate.per_second

    def take(self, now: float) -> None:
        self.tokens, self.stamp = self.level(now) - 1.0, now

    def pause(self, now: float, seconds: float) -> None:
        until = max(now + seconds, self.stamp)
        # At most one token when the pause ends: retry once, then the steady rate, no burst.
        self.tokens, self.stamp = min(self.level(until), 1.0), until

    def is_full(self, now: float) -> bool:
        return now >= self.stamp and self.level(now) >= self.rate.burst


@dataclass
class _Destination:
    name: str
    queue: list[Delivery[Any]] = field(default_factory=list)
    in_flight: Delivery[Any] | None = None
    running: bool = False
    wake: anyio.Event | None = None


@contextmanager
def _unwrap_single() -> Iterator[None]:
    """Raise the block's own error, not anyio's one-member group around it."""
    try:
        yield
    except BaseExceptionGroup as group:
        if len(group.exceptions) != 1:
            raise
        raise group.exceptions[0] from None


class OutputScheduler:
    """Runs outbound platform calls under per-destination budgets.

    Ops for one destination run one at a time: highest `Priority` first, FIFO
    within a priority, and in submission order within a slot. Every call
    draws a token from the destination's bucket (named like the destination)
    and from each extra bucket named in `buckets`; a bucket's rate is the
    first of `rates` whose key equals or glob-matches (`fnmatch`) its name,
    else `default`. Shared buckets are first come, first served across
    destinations.

    A newer op for a slot supersedes the queued DELTA and STATUS ops of that
    slot, so the call must bring the slot to `text` from any earlier state.
    Ops whose `text` equals the text last sent to the slot are skipped. On
    `PlatformRateLimitError` the destination and the op's buckets pause for
    `retry_after` seconds and the op is retried, unless a newer op for its
    slot has arrived meanwhile and it is droppable.
    """

    def __init__(
        self,
        task_group: TaskGroup,
        *,
        rates: Mapping[str, Rate],
        default: Rate,
        clock: Clock,
        max_slots: int,
    ) -> None:
        """Use `OutputScheduler.open()`; this constructor expects a running task group."""
        self._tg = task_group
        self._rates = dict(rates)
        self._default = default
        self._clock = clock
        self._max_slots = max_slots
        self._closed = False
        self._seq = itertools.count()
        self._destinations: dict[str, _Destination] = {}
        self._buckets: dict[str, _Bucket] = {}
        self._last_text: OrderedDict[tuple[str, Hashable], str] = OrderedDict()
        self._calls: Counter[str] = Counter()
        self._rate_limited = 0
        self._rate_limited_seconds = 0.0
        self._skipped = 0
        self._coalesced = 0
        self._failed = 0

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        *,
        rates: RateTable | None = None,
        default: Rate = DEFAULT_RATE,
        clock: Clock | None = None,
        max_slots: int = 10_000,
    ) -> AsyncIterator[OutputScheduler]:
        """Run a scheduler until the block exits, then deliver what is still queued.

        `max_slots` bounds how many slots' last texts are remembered (LRU).
        If the block raises or is cancelled, queued ops fail with
        `anyio.ClosedResourceError` instead of being delivered.
        """
        scheduler: OutputScheduler | None = None
        try:
            with _unwrap_single():
                async with anyio.create_task_group() as tg:
                    scheduler = cls(
                        tg,
                        rates={str(key): rate for key, rate in (rates or {}).items()},
                        default=default,
                        clock=clock or AnyioClock(),
                        max_slots=max_slots,
                    )
                    try:
                        yield scheduler
                    finally:
                        scheduler._closed = True
                    # Leaving the task group waits for the workers to drain their queues.
        finally:
            if scheduler is not None:
                scheduler._abandon()

    @property
    def stats(self) -> SchedulerStats:
        pending = sum(len(d.queue) + (d.in_flight is not None) for d in self._destinations.values())
        return SchedulerStats(
            calls=dict(self._calls),
            rate_limited=self._rate_limited,
            rate_limited_seconds=self._rate_limited_seconds,
            skipped=self._skipped,
            coalesced=self._coalesced,
            failed=self._failed,
            pending=pending,
        )

    def post(
        self,
        destination: Destination | str,
        call: Callable[[], Awaitable[T]],
        *,
        slot: Hashable | None = None,
        priority: Priority = Priority.DELTA,
        text: str | None = None,
        buckets: Iterable[Bucket | str] = (),
    ) -> Delivery[T]:
        """Queue `call` for `destination` and return its handle without waiting.
        Destinations and buckets are typed values or their string forms.

        Raises `anyio.ClosedResourceError` once the scheduler is closing.
        """
        destination = str(destination)
        if self._closed:
            raise anyio.ClosedResourceError("the output scheduler is closed")
        op = Delivery(
            destination,
            call,
            slot=slot,
            priority=Priority(priority),
            text=text,
            buckets=tuple(str(bucket) for bucket in buckets),
            seq=next(self._seq),
        )
        dest = self._destinations.get(destination)
        if dest is None:
            dest = self._destinations[destination] = _Destination(destination)
        if slot is not None:
            for queued in [q for q in dest.queue if q.slot == slot and q.priority in _DROPPABLE]:
                self._supersede(dest, queued)
        dest.queue.append(op)
        if not dest.running:
            dest.running = True
            self._tg.start_soon(self._work, dest, name=f"output to {destination}")
        elif dest.wake is not None:
            dest.wake.set()
        return op

    async def submit(
        self,
        destination: Destination | str,
        call: Callable[[], Awaitable[T]],
        *,
        slot: Hashable | None = None,
        priority: Priority = Priority.DELTA,
        text: str | None = None,
        buckets: Iterable[Bucket | str] = (),
    ) -> T | None:
        """Queue `call` and wait for it: its result, or None if superseded or skipped.

        Cancelling the wait does not withdraw the op. Raises what the call
        raised (rate limits are retried), or `anyio.ClosedResourceError`.
        """
        op = self.post(destination, call, slot=slot, priority=priority, text=text, buckets=buckets)
        return await op.wait()

    async def _work(self, dest: _Destination) -> None:
        try:
            while dest.queue:
                op = self._pick(dest)
                if self._is_noop(op):
                    dest.queue.remove(op)
                    self._skipped += 1
                    op._resolve(Outcome.SKIPPED)
                    continue
                buckets = [self._bucket(name) for name in (dest.name, *op._buckets)]
                now = self._clock.now()
                ready_at = max(bucket.ready_at(now) for bucket in buckets)
                if ready_at > now:
                    # Wake early for newer ops: one may supersede `op` or outrank it.
                    await self._nap(dest, ready_at - now)
                    continue
                for bucket in buckets:
                    bucket.take(now)
                dest.queue.remove(op)
                dest.in_flight = op
                await self._send(dest, op)
                dest.in_flight = None
        finally:
            dest.running = False
            if dest.in_flight is not None:  # cancelled mid-call: the outcome is unknown
                dest.in_flight._resolve(
                    Outcome.FAILED, error=anyio.ClosedResourceError("scheduler closed mid-call")
                )
                dest.in_flight = None
            if not dest.queue and self._destinations.get(dest.name) is dest:
                del self._destinations[dest.name]

    async def _send(self, dest: _Destination, op: Delivery[Any]) -> None:
        self._calls[dest.name] += 1
        try:
            result = await op._call()
        except PlatformRateLimitError as exc:
            self._pause(dest, op, max(0.0, float(exc.retry_after)))
            newer = op.slot is not None and any(q.slot == op.slot for q in dest.queue)
            if newer and op.priority in _DROPPABLE:
                self._coalesced += 1
                op._resolve(Outcome.SUPERSEDED)
            else:
                dest.queue.append(op)  # keeps its sequence number, hence its place
            return
        except Exception as exc:  # the submitter's handle carries the call's own error
            self._failed += 1
            logger.debug("output call to %s failed", dest.name, exc_info=True)
            op._resolve(Outcome.FAILED, error=exc)
            return
        if op.slot is not None and op.text is not None:
            key = (dest.name, op.slot)
            self._last_text[key] = op.text
            self._last_text.move_to_end(key)
            while len(self._last_text) > self._max_slots:
                self._last_text.popitem(last=False)
        op._resolve(Outcome.SENT, result)

    @staticmethod
    def _pick(dest: _Destination) -> Delivery[Any]:
        """Highest priority, then oldest, among the oldest queued op of each slot."""
        best: Delivery[Any] | None = None
        seen: set[Hashable] = set()
        for op in sorted(dest.queue, key=lambda q: q._seq):
            if op.slot is not None:
                if op.slot in seen:
                    continue
                seen.add(op.slot)
            if best is None or op.priority > best.priority:
                best = op
        assert best is not None  # the caller checked that the queue is not empty
        return best

    def _is_noop(self, op: Delivery[Any]) -> bool:
        if op.slot is None or op.text is None:
            return False
        return self._last_text.get((op.destination, op.slot)) == op.text

    def _supersede(self, dest: _Destination, op: Delivery[Any]) -> None:
        dest.queue.remove(op)
        self._coalesced += 1
        op._resolve(Outcome.SUPERSEDED)

    def _pause(self, dest: _Destination, op: Delivery[Any], seconds: float) -> None:
        self._rate_limited += 1
        self._rate_limited_seconds += seconds
        logger.info("%s asked to wait %.3gs", dest.name, seconds)
        now = self._clock.now()
        for name in (dest.name, *op._buckets):
            self._bucket(name).pause(now, seconds)

    async def _nap(self, dest: _Destination, seconds: float) -> None:
        dest.wake = wake = anyio.Event()
        async with anyio.create_task_group() as tg:

            async def sleep() -> None:
                await self._clock.sleep(seconds)
                wake.set()

            tg.start_soon(sleep)
            await wake.wait()
            tg.cancel_scope.cancel()
        dest.wake = None

    def _bucket(self, name: str) -> _Bucket:
        bucket = self._buckets.get(name)
        if bucket is None:
            now = self._clock.now()
            if len(self._buckets) >= 1024:  # full idle buckets are as good as new ones
                for idle in [k for k, b in self._buckets.items() if b.is_full(now)]:
                    del self._buckets[idle]
            rate = self._rate_for(name)
            bucket = self._buckets[name] = _Bucket(rate, float(rate.burst), now)
        return bucket

    def set_rates(self, rates: RateTable) -> None:
        """Add or override bucket rates (typed buckets, exact names or `fnmatch` patterns);
        an adapter declares its platform's limits this way when it starts. Buckets already
        in use keep their rate until they are next created."""
        named = {str(key): rate for key, rate in rates.items()}
        self._rates = {**named, **{k: v for k, v in self._rates.items() if k not in named}}

    def _rate_for(self, name: str) -> Rate:
        if name in self._rates:
            return self._rates[name]
        for pattern, rate in self._rates.items():
            if fnmatchcase(name, pattern):
                return rate
        return self._default

    def _abandon(self) -> None:
        """Fail whatever is still queued so that no waiter hangs."""
        for dest in list(self._destinations.values()):
            for op in dest.queue:
                op._resolve(Outcome.FAILED, error=anyio.ClosedResourceError("scheduler closed"))
            dest.queue.clear()
        self._destinations.clear()
