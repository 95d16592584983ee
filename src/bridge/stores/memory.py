"""`memory://`: a process-local `SessionStore` for tests and single-shot tools.

Same semantics as the durable stores (values round-trip through JSON, TTLs and
leases expire by wall clock), but nothing survives the process.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bridge.errors import StoreError
from bridge.stores._base import InFlightTurn, OpensAsContext, ThreadRef
from bridge.stores._retention import (
    DEFAULT_CLAIM_TTL,
    DEFAULT_THREAD_RETENTION,
    refill,
    require_bucket,
)
from bridge.stores._retention import require_positive as _require_positive

__all__ = ["DEFAULT_CLAIM_TTL", "MemoryStore"]


class MemoryStore(OpensAsContext):
    """A `SessionStore` held in dictionaries.

    Every method runs without awaiting anything, so each call is atomic within
    one event loop. `clock` returns wall-clock seconds; tests may inject one.
    Raises `StoreError` when used while closed.
    """

    def __init__(
        self,
        url: str = "memory://",
        *,
        clock: Callable[[], float] = time.time,
        thread_retention: float = DEFAULT_THREAD_RETENTION,
        claim_ttl: float = DEFAULT_CLAIM_TTL,
    ) -> None:
        _require_positive("thread_retention", thread_retention)
        _require_positive("claim_ttl", claim_ttl)
        self.url = url
        self._clock = clock
        self._thread_retention = thread_retention
        self._claim_ttl = claim_ttl
        self._is_open = False
        # Values are stored as JSON so that callers cannot alias stored state.
        self._threads: dict[str, tuple[str, float]] = {}  # key -> (JSON, expires at)
        self._turns: dict[str, str] = {}
        self._seen: dict[str, float] = {}
        self._claims: dict[str, float] = {}
        self._locks: dict[str, tuple[str, float]] = {}
        self._secrets: dict[str, str] = {}
        self._records: dict[str, tuple[str, float]] = {}
        self._buckets: dict[str, tuple[float, float, float]] = {}  # tokens, at, expires at

    async def open(self) -> None:
        self._is_open = True

    async def close(self) -> None:
        self._is_open = False

    def _check_open(self) -> None:
        if not self._is_open:
            raise StoreError("store is not open", url=self.url)

    # -- conversation key -> thread --------------------------------------
    async def get_thread(self, key: str) -> ThreadRef | None:
        self._check_open()
        raw = self._live_thread(key)
        return None if raw is None else ThreadRef.model_validate_json(raw)

    def _live_thread(self, key: str) -> str | None:
        held = self._threads.get(key)
        return held[0] if held is not None and held[1] > self._clock() else None

    async def put_thread(self, key: str, ref: ThreadRef) -> None:
        self._check_open()
        self._put_thread(key, ref)

    def _put_thread(self, key: str, ref: ThreadRef) -> None:
        now = self._clock()
        self._threads[key] = (ref.model_dump_json(), now + self._thread_retention)
        if len(self._threads) % 1024 == 0:
            for stale in [k for k, (_, expires_at) in self._threads.items() if expires_at <= now]:
                del self._threads[stale]

    async def delete_thread(self, key: str) -> bool:
        self._check_open()
        existed = self._live_thread(key) is not None
        self._threads.pop(key, None)
        return existed

    async def delete_threads(self, prefix: str) -> int:
        self._check_open()
        doomed = [key for key in self._threads if key.startswith(prefix)]
        live = sum(self._live_thread(key) is not None for key in doomed)
        for key in doomed:
            del self._threads[key]
        return live

    # -- inbound dedupe ----------------------------------------------------
    async def mark_seen(self, delivery_id: str, ttl: float) -> bool:
        _require_positive("ttl", ttl)
        self._check_open()
        return self._mark(self._seen, delivery_id, ttl)

    def _mark(self, table: dict[str, float], ident: str, ttl: float) -> bool:
        now = self._clock()
        expires_at = table.get(ident)
        if expires_at is not None and expires_at > now:
            return False
        table[ident] = now + ttl
        if len(table) % 1024 == 0:
            self._purge(table, now)
        return True

    @staticmethod
    def _purge(table: dict[str, float], now: float) -> None:
        for ident in [ident for ident, expires_at in table.items() if expires_at <= now]:
            del table[ident]

    # -- in-flight ledger --------------------------------------------------
    async def record_turn(self, turn: InFlightTurn, *, thread: ThreadRef | None = None) -> None:
        self._check_open()
        self._turns[turn.turn_id] = turn.model_dump_json()
        if thread is not None:
            self._put_thread(turn.key, thread)

    async def get_turn(self, turn_id: str) -> InFlightTurn | None:
        self._check_open()
        raw = self._turns.get(turn_id)
        return None if raw is None else InFlightTurn.model_validate_json(raw)

    async def list_turns(self) -> list[InFlightTurn]:
        self._check_open()
        turns = [InFlightTurn.model_validate_json(raw) for raw in self._turns.values()]
        return sorted(turns, key=lambda turn: (turn.started_at, turn.turn_id))

    async def claim_delivery(self, turn_id: str) -> bool:
        self._check_open()
        return self._mark(self._claims, turn_id, self._claim_ttl)

    async def drop_turn(self, turn_id: str) -> None:
        self._check_open()
        self._turns.pop(turn_id, None)

    async def finish_turn(
        self, turn_id: str, *, lock: str | None = None, owner: str | None = None
    ) -> bool:
        self._check_open()
        claimed = self._mark(self._claims, turn_id, self._claim_ttl)
        self._turns.pop(turn_id, None)
        if lock is not None:
            self._release(lock, owner)
        return claimed

    # -- leased locks ------------------------------------------------------
    async def acquire_lock(self, name: str, owner: str, lease: float) -> bool:
        _require_positive("lease", lease)
        self._check_open()
        return self._acquire(name, owner, lease)

    def _acquire(self, name: str, owner: str, lease: float) -> bool:
        now = self._clock()
        held = self._locks.get(name)
        if held is not None and held[0] != owner and held[1] > now:
            return False
        self._locks[name] = (owner, now + lease)
        return True

    async def acquire_lock_and_get_thread(
        self, name: str, owner: str, lease: float, key: str
    ) -> tuple[bool, ThreadRef | None]:
        _require_positive("lease", lease)
        self._check_open()
        if not self._acquire(name, owner, lease):
            return False, None
        raw = self._live_thread(key)
        return True, None if raw is None else ThreadRef.model_validate_json(raw)

    async def renew_lock(self, name: str, owner: str, lease: float) -> bool:
        _require_positive("lease", lease)
        self._check_open()
        now = self._clock()
        held = self._locks.get(name)
        if held is None or held[0] != owner or held[1] <= now:
            return False
        self._locks[name] = (owner, now + lease)
        return True

    async def release_lock(self, name: str, owner: str) -> None:
        self._check_open()
        self._release(name, owner)

    def _release(self, name: str, owner: str | None) -> None:
        held = self._locks.get(name)
        if held is not None and held[0] == owner:
            del self._locks[name]

    async def lock_owner(self, name: str) -> str | None:
        self._check_open()
        held = self._locks.get(name)
        if held is None or held[1] <= self._clock():
            return None
        return held[0]

    # -- shared secrets ----------------------------------------------------
    async def ensure_secret(self, name: str, candidate: str) -> str:
        self._check_open()
        return self._secrets.setdefault(name, candidate)

    # -- short-lived records -----------------------------------------------
    async def put_record(self, name: str, value: str, ttl: float) -> None:
        _require_positive("ttl", ttl)
        self._check_open()
        now = self._clock()
        self._records[name] = (value, now + ttl)
        if len(self._records) % 1024 == 0:
            self._records = {k: v for k, v in self._records.items() if v[1] > now}

    async def get_record(self, name: str) -> str | None:
        self._check_open()
        held = self._records.get(name)
        if held is None or held[1] <= self._clock():
            return None
        return held[0]

    # -- shared rate limits ------------------------------------------------
    async def take_token(self, key: str, *, capacity: float, refill_per_second: float) -> float:
        require_bucket(capacity, refill_per_second)
        self._check_open()
        now = self._clock()
        tokens, at, expires_at = self._buckets.get(key, (capacity, now, now))
        if expires_at <= now:
            tokens, at = capacity, now
        tokens, wait = refill(tokens, now - at, capacity, refill_per_second)
        self._buckets[key] = (tokens, now, now + capacity / refill_per_second)
        if len(self._buckets) % 1024 == 0:
            self._buckets = {k: v for k, v in self._buckets.items() if v[2] > now}
        return wait
