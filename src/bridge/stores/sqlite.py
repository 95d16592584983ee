"""`sqlite:///path`: the embedded default `SessionStore`, one WAL-mode file per host.

Safe with several processes on one host: every read-modify-write is one
statement inside `BEGIN IMMEDIATE`, and expiry is stored as wall-clock time.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from bridge._private import private_file
from bridge.errors import StoreError
from bridge.stores._base import InFlightTurn, OpensAsContext, ThreadRef
from bridge.stores._retention import (
    DEFAULT_CLAIM_TTL,
    DEFAULT_THREAD_RETENTION,
    refill,
    require_bucket,
)
from bridge.stores._retention import require_positive as _require_positive

__all__ = ["SCHEMA_VERSION", "SQLiteStore"]

T = TypeVar("T")

SCHEMA_VERSION = 4
"""Stored in `PRAGMA user_version`; bump it with a migration step in `_migrate`."""

_SCHEMA_V1 = """
CREATE TABLE threads (key TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE seen (id TEXT PRIMARY KEY, expires_at REAL NOT NULL);
CREATE INDEX seen_expiry ON seen (expires_at);
CREATE TABLE turns (turn_id TEXT PRIMARY KEY, started_at REAL NOT NULL, data TEXT NOT NULL);
CREATE TABLE claims (turn_id TEXT PRIMARY KEY, expires_at REAL NOT NULL);
CREATE INDEX claims_expiry ON claims (expires_at);
CREATE TABLE locks (name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at REAL NOT NULL);
"""
_SCHEMA_V2 = """
CREATE TABLE IF NOT EXISTS secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (name TEXT PRIMARY KEY, value TEXT NOT NULL, expires_at REAL NOT NULL);
"""
# v3: threads expire; rows from before start their retention at the upgrade (`?` = that time).
_SCHEMA_V3 = """
ALTER TABLE threads ADD COLUMN expires_at REAL NOT NULL DEFAULT 0;
UPDATE threads SET expires_at = ?;
CREATE INDEX threads_expiry ON threads (expires_at);
"""
_SCHEMA_V4 = """
CREATE TABLE IF NOT EXISTS buckets (
    key TEXT PRIMARY KEY, tokens REAL NOT NULL, at REAL NOT NULL, expires_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS buckets_expiry ON buckets (expires_at);
"""

# Insert, or take over a row whose expiry has passed; rowcount says which happened.
_MARK_SQL = """
INSERT INTO {table} ({column}, expires_at) VALUES (?, ?)
ON CONFLICT ({column}) DO UPDATE SET expires_at = excluded.expires_at
WHERE {table}.expires_at <= ?
"""
_ACQUIRE_SQL = """
INSERT INTO locks (name, owner, expires_at) VALUES (?, ?, ?)
ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
WHERE locks.owner = excluded.owner OR locks.expires_at <= ?
"""
_RELEASE_SQL = "DELETE FROM locks WHERE name = ? AND owner = ?"
_DROP_SQL = "DELETE FROM turns WHERE turn_id = ?"
_RENEW_SQL = """
UPDATE locks SET expires_at = ? WHERE name = ? AND owner = ? AND expires_at > ?
"""
_PURGE_EVERY = 256
_CHECKPOINT_EVERY = 512
"""Writes between two WAL checkpoints (run on a worker thread: they sync the files)."""
_BUSY = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _purge(conn: sqlite3.Connection, table: str, now: float) -> None:
    conn.execute(f"DELETE FROM {table} WHERE expires_at <= ?", (now,))


def _acquire(conn: sqlite3.Connection, *, name: str, owner: str, lease: float) -> bool:
    now = time.time()
    return conn.execute(_ACQUIRE_SQL, (name, owner, now + lease, now)).rowcount > 0


def _read_thread(conn: sqlite3.Connection, *, key: str) -> str | None:
    """The unexpired mapping of `key` as stored (JSON), or None."""
    row = conn.execute(
        "SELECT data FROM threads WHERE key = ? AND expires_at > ?", (key, time.time())
    ).fetchone()
    return None if row is None else str(row[0])


def _thread(data: str | None) -> ThreadRef | None:
    return None if data is None else ThreadRef.model_validate_json(data)


class SQLiteStore(OpensAsContext):
    """A `SessionStore` in one SQLite file (created with its parent directories).

    Uses the stdlib `sqlite3` rather than aiosqlite, one transaction at a time (one
    lock). A transaction first runs on the event loop on a connection that never waits
    for a lock (a WAL write without a sync takes microseconds, a thread hop ten times
    more); only when another process holds the lock does it run again on a worker
    thread, on a connection that waits up to `busy_timeout`. WAL checkpoints, which
    sync the files, run on a worker thread. Works on any anyio backend.
    Every method raises `StoreError` when the database fails or the store is closed.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        url: str | None = None,
        busy_timeout: float = 5.0,
        thread_retention: float = DEFAULT_THREAD_RETENTION,
        claim_ttl: float = DEFAULT_CLAIM_TTL,
    ) -> None:
        _require_positive("thread_retention", thread_retention)
        _require_positive("claim_ttl", claim_ttl)
        self.path = str(path)
        self.url = url or f"sqlite:///{self.path}"
        self._busy_timeout_ms = int(busy_timeout * 1000)
        self._thread_retention = thread_retention
        self._claim_ttl = claim_ttl
        self._conn: sqlite3.Connection | None = None  # waits for locks: worker threads
        self._fast: sqlite3.Connection | None = None  # never waits: the event loop
        self._checkpointer: sqlite3.Connection | None = None
        self._lock = anyio.Lock(fast_acquire=True)
        self._checkpointing = anyio.Lock(fast_acquire=True)
        self._writes = 0
        self._unchecked_writes = 0

    @contextmanager
    def _translate_errors(self) -> Iterator[None]:
        """The one place where sqlite3 and filesystem errors become `StoreError`."""
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"sqlite store failed: {exc}", url=self.url) from exc

    async def open(self) -> None:
        async with self._lock:
            if self._conn is not None:
                return
            with self._translate_errors():
                self._conn = await anyio.to_thread.run_sync(self._connect_patiently)
                if self.path == ":memory:":  # private to this connection: nobody else waits
                    self._fast = self._checkpointer = self._conn
                else:
                    self._fast = await anyio.to_thread.run_sync(self._connect_fast)
                    self._checkpointer = await anyio.to_thread.run_sync(self._connect_fast)

    def _connect_patiently(self) -> sqlite3.Connection:
        # Switching a new file to WAL can fail with "database is locked" without waiting
        # for busy_timeout while another process does the same: retry within that budget.
        deadline = time.monotonic() + self._busy_timeout_ms / 1000
        delay = 0.01
        while True:
            try:
                return self._connect()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)  # in a worker thread, not the event loop
                delay = min(delay * 2, 0.2)

    def _connect(self) -> sqlite3.Connection:
        if self.path != ":memory:":
            private_file(self.path)  # 0600; SQLite gives its -wal and -shm files the same mode
        # isolation_level=None: we issue BEGIN IMMEDIATE ourselves.
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
            conn.execute("PRAGMA journal_mode = WAL")
            # NORMAL is crash-safe in WAL mode; only a power loss may drop the last commits.
            conn.execute("PRAGMA synchronous = NORMAL")
            self._migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _connect_fast(self) -> sqlite3.Connection:
        """A connection that fails at once with SQLITE_BUSY instead of waiting, and leaves
        WAL checkpoints (file syncs) to `_checkpoint`."""
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout = 0")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA wal_autocheckpoint = 0")
        except BaseException:
            conn.close()
            raise
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            (version,) = conn.execute("PRAGMA user_version").fetchone()
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"database schema version {version} is newer than this bridge "
                    f"supports ({SCHEMA_VERSION})",
                    url=self.url,
                )
            now = time.time()
            steps = [(1, _SCHEMA_V1), (2, _SCHEMA_V2), (3, _SCHEMA_V3), (4, _SCHEMA_V4)]
            for step, schema in steps:
                if version < step:
                    for statement in filter(str.strip, schema.split(";")):
                        params = (now + self._thread_retention,) if "?" in statement else ()
                        conn.execute(statement, params)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            for table in ("threads", "seen", "claims", "records", "buckets"):
                conn.execute(f"DELETE FROM {table} WHERE expires_at <= ?", (now,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    async def close(self) -> None:
        async with self._lock, self._checkpointing:
            conns = {self._conn, self._fast, self._checkpointer} - {None}
            self._conn = self._fast = self._checkpointer = None
            with self._translate_errors():
                for conn in conns:
                    assert conn is not None
                    await anyio.to_thread.run_sync(conn.close)

    async def _run(self, work: Callable[[sqlite3.Connection], T], *, write: bool) -> T:
        """Run `work` in a transaction if `write`: on the event loop unless another process
        holds the lock, then on a worker thread that waits for it."""
        async with self._lock:
            fast, conn = self._fast, self._conn
            if fast is None or conn is None:
                raise StoreError("store is not open", url=self.url)
            with self._translate_errors():
                try:
                    result = _transaction(fast, work, write=write)
                except sqlite3.OperationalError as exc:
                    if exc.sqlite_errorcode & 0xFF not in _BUSY:
                        raise
                    result = await anyio.to_thread.run_sync(_transaction, conn, work, write)
        if write:
            self._unchecked_writes += 1
            if self._unchecked_writes >= _CHECKPOINT_EVERY and not self._checkpointing.locked():
                await self._checkpoint()
        return result

    async def _checkpoint(self) -> None:
        """Copy the WAL into the database on a worker thread, beside the other calls."""
        async with self._checkpointing:
            self._unchecked_writes = 0
            checkpointer = self._checkpointer
            if checkpointer is not None:
                with self._translate_errors():
                    await anyio.to_thread.run_sync(
                        checkpointer.execute, "PRAGMA wal_checkpoint(PASSIVE)"
                    )

    def _purge_due(self) -> bool:
        """Whether this write also drops expired rows (every few hundred writes)."""
        self._writes += 1
        return self._writes % _PURGE_EVERY == 0

    async def _execute(self, sql: str, params: tuple[Any, ...]) -> int:
        """Run one write statement; returns its rowcount."""
        return await self._run(lambda conn: conn.execute(sql, params).rowcount, write=True)

    async def _fetchone(self, sql: str, params: tuple[Any, ...]) -> Any:
        return await self._run(lambda conn: conn.execute(sql, params).fetchone(), write=False)

    # -- conversation key -> thread --------------------------------------
    async def get_thread(self, key: str) -> ThreadRef | None:
        return _thread(await self._run(partial(_read_thread, key=key), write=False))

    async def put_thread(self, key: str, ref: ThreadRef) -> None:
        await self._run(self._thread_writer(key, ref), write=True)

    def _thread_writer(self, key: str, ref: ThreadRef) -> Callable[[sqlite3.Connection], None]:
        """The work of `put_thread`, for a transaction of its own or a larger one."""
        purge, data = self._purge_due(), ref.model_dump_json()

        def work(conn: sqlite3.Connection) -> None:
            now = time.time()
            if purge:
                _purge(conn, "threads", now)
            conn.execute(
                "INSERT OR REPLACE INTO threads (key, data, expires_at) VALUES (?, ?, ?)",
                (key, data, now + self._thread_retention),
            )

        return work

    async def delete_thread(self, key: str) -> bool:
        def work(conn: sqlite3.Connection) -> bool:
            deleted = conn.execute(
                "DELETE FROM threads WHERE key = ? RETURNING expires_at", (key,)
            ).fetchall()
            return any(expires_at > time.time() for (expires_at,) in deleted)

        return await self._run(work, write=True)

    async def delete_threads(self, prefix: str) -> int:
        # substr() compares literally and case-sensitively, unlike LIKE; the range
        # condition lets the primary key index narrow the scan.
        def work(conn: sqlite3.Connection) -> int:
            deleted = conn.execute(
                "DELETE FROM threads WHERE key >= ? AND substr(key, 1, ?) = ? RETURNING expires_at",
                (prefix, len(prefix), prefix),
            ).fetchall()
            now = time.time()
            return sum(expires_at > now for (expires_at,) in deleted)

        return await self._run(work, write=True)

    # -- inbound dedupe ----------------------------------------------------
    async def mark_seen(self, delivery_id: str, ttl: float) -> bool:
        _require_positive("ttl", ttl)
        return await self._mark("seen", "id", delivery_id, ttl)

    async def _mark(self, table: str, column: str, ident: str, ttl: float) -> bool:
        return await self._run(self._marker(table, column, ident, ttl), write=True)

    def _marker(
        self, table: str, column: str, ident: str, ttl: float
    ) -> Callable[[sqlite3.Connection], bool]:
        """The work of `_mark`, for a transaction of its own or a larger one."""
        sql = _MARK_SQL.format(table=table, column=column)
        purge = self._purge_due()

        def work(conn: sqlite3.Connection) -> bool:
            now = time.time()
            if purge:
                _purge(conn, table, now)
            return conn.execute(sql, (ident, now + ttl, now)).rowcount > 0

        return work

    # -- in-flight ledger --------------------------------------------------
    async def record_turn(self, turn: InFlightTurn, *, thread: ThreadRef | None = None) -> None:
        row = (turn.turn_id, turn.started_at, turn.model_dump_json())
        put_thread = None if thread is None else self._thread_writer(turn.key, thread)

        def work(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO turns (turn_id, started_at, data) VALUES (?, ?, ?)", row
            )
            if put_thread is not None:
                put_thread(conn)

        await self._run(work, write=True)

    async def get_turn(self, turn_id: str) -> InFlightTurn | None:
        row = await self._fetchone("SELECT data FROM turns WHERE turn_id = ?", (turn_id,))
        return None if row is None else InFlightTurn.model_validate_json(row[0])

    async def list_turns(self) -> list[InFlightTurn]:
        rows: list[tuple[str]] = await self._run(
            lambda conn: conn.execute(
                "SELECT data FROM turns ORDER BY started_at, turn_id"
            ).fetchall(),
            write=False,
        )
        return [InFlightTurn.model_validate_json(data) for (data,) in rows]

    async def claim_delivery(self, turn_id: str) -> bool:
        return await self._mark("claims", "turn_id", turn_id, self._claim_ttl)

    async def drop_turn(self, turn_id: str) -> None:
        await self._execute(_DROP_SQL, (turn_id,))

    async def finish_turn(
        self, turn_id: str, *, lock: str | None = None, owner: str | None = None
    ) -> bool:
        claim = self._marker("claims", "turn_id", turn_id, self._claim_ttl)

        def work(conn: sqlite3.Connection) -> bool:
            claimed = claim(conn)
            conn.execute(_DROP_SQL, (turn_id,))
            if lock is not None:
                conn.execute(_RELEASE_SQL, (lock, owner))
            return claimed

        return await self._run(work, write=True)

    # -- leased locks ------------------------------------------------------
    async def acquire_lock(self, name: str, owner: str, lease: float) -> bool:
        _require_positive("lease", lease)
        return await self._run(partial(_acquire, name=name, owner=owner, lease=lease), write=True)

    async def acquire_lock_and_get_thread(
        self, name: str, owner: str, lease: float, key: str
    ) -> tuple[bool, ThreadRef | None]:
        _require_positive("lease", lease)

        def work(conn: sqlite3.Connection) -> tuple[bool, str | None]:
            if not _acquire(conn, name=name, owner=owner, lease=lease):
                return False, None
            return True, _read_thread(conn, key=key)

        taken, data = await self._run(work, write=True)
        return taken, _thread(data)

    async def renew_lock(self, name: str, owner: str, lease: float) -> bool:
        _require_positive("lease", lease)

        def work(conn: sqlite3.Connection) -> bool:
            now = time.time()
            return conn.execute(_RENEW_SQL, (now + lease, name, owner, now)).rowcount > 0

        return await self._run(work, write=True)

    async def release_lock(self, name: str, owner: str) -> None:
        await self._execute(_RELEASE_SQL, (name, owner))

    async def lock_owner(self, name: str) -> str | None:
        row = await self._fetchone(
            "SELECT owner FROM locks WHERE name = ? AND expires_at > ?", (name, time.time())
        )
        return None if row is None else str(row[0])

    # -- shared secrets ----------------------------------------------------
    async def ensure_secret(self, name: str, candidate: str) -> str:
        def work(conn: sqlite3.Connection) -> str:
            conn.execute(
                "INSERT OR IGNORE INTO secrets (name, value) VALUES (?, ?)", (name, candidate)
            )
            (value,) = conn.execute("SELECT value FROM secrets WHERE name = ?", (name,)).fetchone()
            return str(value)

        return await self._run(work, write=True)

    # -- short-lived records -----------------------------------------------
    async def put_record(self, name: str, value: str, ttl: float) -> None:
        _require_positive("ttl", ttl)
        purge = self._purge_due()

        def work(conn: sqlite3.Connection) -> None:
            now = time.time()
            if purge:
                _purge(conn, "records", now)
            conn.execute(
                "INSERT OR REPLACE INTO records (name, value, expires_at) VALUES (?, ?, ?)",
                (name, value, now + ttl),
            )

        await self._run(work, write=True)

    async def get_record(self, name: str) -> str | None:
        row = await self._fetchone(
            "SELECT value FROM records WHERE name = ? AND expires_at > ?", (name, time.time())
        )
        return None if row is None else str(row[0])

    # -- shared rate limits ------------------------------------------------
    async def take_token(self, key: str, *, capacity: float, refill_per_second: float) -> float:
        require_bucket(capacity, refill_per_second)
        purge = self._purge_due()

        def work(conn: sqlite3.Connection) -> float:
            now = time.time()
            if purge:
                _purge(conn, "buckets", now)
            row = conn.execute(
                "SELECT tokens, at FROM buckets WHERE key = ? AND expires_at > ?", (key, now)
            ).fetchone()
            tokens, at = row if row is not None else (capacity, now)
            tokens, wait = refill(tokens, now - at, capacity, refill_per_second)
            conn.execute(
                "INSERT OR REPLACE INTO buckets (key, tokens, at, expires_at) VALUES (?, ?, ?, ?)",
                (key, tokens, now, now + capacity / refill_per_second),
            )
            return wait

        return await self._run(work, write=True)


def _transaction(
    conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], T], write: bool
) -> T:
    """`work(conn)`, inside `BEGIN IMMEDIATE` … `COMMIT` if `write`."""
    if not write:
        return work(conn)
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = work(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # never left open: the other connection would wait on it
            conn.execute("ROLLBACK")
        raise
    return result
