"""The `SessionStore` protocol: durable state shared by every replica of the bridge.


Implementations: `memory://` (tests), `sqlite:///path` (embedded default),
`redis://…` and `postgresql://…` (scale-out). One conformance suite
runs against all of them: `bridge.testing._stores.STORE_CHECKS`.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["InFlightTurn", "OpensAsContext", "SessionStore", "ThreadRef"]


def _now() -> float:
    return time.time()


class ThreadRef(BaseModel):
    """What a conversation key maps to: the upstream thread and who owns it."""

    model_config = ConfigDict(frozen=True)

    task_id: str
    agent_id: str
    owner: str | None = None
    created_at: float = Field(default_factory=_now)
    updated_at: float = Field(default_factory=_now)


ReplyT = TypeVar("ReplyT", bound=BaseModel)


class PlatformMessage(BaseModel):
    """A message on a chat platform: the adapter, the space it is in (a chat, a channel),
    and the platform's id for it. Its string form is `adapter|space|id`."""

    model_config = ConfigDict(frozen=True)

    adapter: str
    space: str
    id: str

    def __str__(self) -> str:
        return f"{self.adapter}|{self.space}|{self.id}"


class InFlightTurn(BaseModel):
    """A turn recorded before it is invoked and dropped once its answer is delivered.

    `reply` is adapter-owned data saying where the answer is being drawn
    (for example a Slack channel and message ts); the core never reads it.
    """

    model_config = ConfigDict(frozen=True)

    turn_id: str
    key: str
    adapter: str
    agent_id: str
    text: str
    source: str
    user: dict[str, Any] | None = None
    thread: str | None = None
    """The thread (task id) this turn continues, if any."""
    task_id: str | None = None
    """Set once `task_created` showed the turn reached the platform."""
    new_thread_id: str | None = None
    """The id chosen for the new thread this turn starts, recorded before it is sent."""
    thread_messages: int | None = None
    """How many messages `thread` had before this turn was sent."""
    reply: dict[str, Any] = Field(default_factory=dict)
    """The adapter's reply model as JSON fields; read it back with `reply_as`."""
    messages: tuple[PlatformMessage, ...] = ()
    """The platform messages the answer is being drawn in, oldest first (`Turn.add_message`):
    recovery finishes them in place."""
    holder: str | None = None
    attempts: int = 0
    """Deliveries of this turn that failed with something other than a platform error."""
    quarantined: bool = False
    """Set after `max_delivery_attempts` such failures: kept for operators, never retried."""
    last_error: str | None = None
    started_at: float = Field(default_factory=_now)
    heartbeat_at: float = Field(default_factory=_now)

    def reply_as(self, model: type[ReplyT]) -> ReplyT:
        """The recorded reply address as the adapter's own model.

        Raises:
            pydantic.ValidationError: the record does not hold that model.
        """
        return model.model_validate(self.reply)


@runtime_checkable
class SessionStore(Protocol):
    """Async key-value state with atomic dedupe, an in-flight ledger and leased locks.

    Every method raises `bridge.errors.StoreError` when the backend fails.
    Times are seconds (floats); TTLs and leases are relative durations.
    """

    url: str

    async def open(self) -> None:
        """Connect / create schema. Idempotent."""

    async def close(self) -> None:
        """Release connections. Idempotent."""

    # -- conversation key -> thread --------------------------------------
    async def get_thread(self, key: str) -> ThreadRef | None: ...

    async def put_thread(self, key: str, ref: ThreadRef) -> None: ...

    async def delete_thread(self, key: str) -> bool:
        """Drop one mapping; True when it existed."""

    async def delete_threads(self, prefix: str) -> int:
        """Drop every mapping whose key starts with `prefix`; returns how many."""

    # -- inbound dedupe ----------------------------------------------------
    async def mark_seen(self, delivery_id: str, ttl: float) -> bool:
        """Atomically record a delivery id; True the first time within `ttl`, else False."""

    # -- in-flight ledger --------------------------------------------------
    async def record_turn(self, turn: InFlightTurn, *, thread: ThreadRef | None = None) -> None:
        """Insert or replace the record with `turn.turn_id`; with `thread`, also
        `put_thread(turn.key, thread)`, in the same atomic step."""

    async def get_turn(self, turn_id: str) -> InFlightTurn | None: ...

    async def list_turns(self) -> list[InFlightTurn]:
        """Every recorded turn, oldest `started_at` first."""

    async def claim_delivery(self, turn_id: str) -> bool:
        """Atomically mark the turn's answer as delivered; True for exactly one caller ever."""

    async def drop_turn(self, turn_id: str) -> None:
        """Remove the record (the delivery claim may be kept for dedupe)."""

    async def finish_turn(
        self, turn_id: str, *, lock: str | None = None, owner: str | None = None
    ) -> bool:
        """`claim_delivery(turn_id)`, `drop_turn(turn_id)` and, with `lock`,
        `release_lock(lock, owner)`, as one atomic step; returns the claim's result."""

    # -- leased locks ------------------------------------------------------
    async def acquire_lock(self, name: str, owner: str, lease: float) -> bool:
        """Take the lock if free or its lease expired; True on success. Not re-entrant
        for other owners; the same owner re-acquiring refreshes the lease."""

    async def acquire_lock_and_get_thread(
        self, name: str, owner: str, lease: float, key: str
    ) -> tuple[bool, ThreadRef | None]:
        """`acquire_lock(name, owner, lease)` and, when it was taken, `get_thread(key)` read
        while holding it, as one step: `(True, mapping)` or `(False, None)`."""

    async def renew_lock(self, name: str, owner: str, lease: float) -> bool:
        """Extend the lease if `owner` still holds it; False when it was lost."""

    async def release_lock(self, name: str, owner: str) -> None:
        """Release if held by `owner`; a no-op otherwise."""

    async def lock_owner(self, name: str) -> str | None:
        """The current unexpired holder, or None."""

    # -- shared secrets ----------------------------------------------------
    async def ensure_secret(self, name: str, candidate: str) -> str:
        """Store `candidate` under `name` unless a value is there already; return the stored value.
        Atomic: concurrent callers on every replica get the same value."""

    # -- short-lived records -----------------------------------------------
    async def put_record(self, name: str, value: str, ttl: float) -> None:
        """Insert or replace a small value under `name` that expires after `ttl` seconds."""

    async def get_record(self, name: str) -> str | None:
        """The unexpired value under `name`, or None."""

    # -- shared rate limits ------------------------------------------------
    async def take_token(self, key: str, *, capacity: float, refill_per_second: float) -> float:
        """Take one token from the bucket `key` (full at `capacity`, refilled evenly at
        `refill_per_second`), atomically for every replica. Returns 0.0 when a token was
        taken, else the seconds until one will be. A bucket left idle long enough to be
        full again is forgotten. Raises `ValueError` unless both numbers are positive."""


class OpensAsContext:
    """`async with Store(...) as store:` for the implementations: open on entry, close on exit."""

    async def open(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
