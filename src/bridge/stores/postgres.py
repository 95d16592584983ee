"""`postgresql://…`: the durable scale-out `SessionStore`, shared by every replica.

Every atomic step is one statement (`INSERT … ON CONFLICT … WHERE`), and every
expiry is compared with the database's clock, so replicas' clocks need not agree.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import anyio
import asyncpg

from bridge.errors import ConfigError, StoreError
from bridge.stores._base import InFlightTurn, OpensAsContext, ThreadRef
from bridge.stores._retention import (
    DEFAULT_CLAIM_TTL,
    DEFAULT_THREAD_RETENTION,
    require_bucket,
    require_positive,
)

__all__ = [
    "DEFAULT_POOL_SIZE",
    "DEFAULT_SCHEMA",
    "SCHEMA_VERSION",
    "PostgresStore",
    "postgres_schema_sql",
    "schema_sql",
]

logger = logging.getLogger(__name__)

DEFAULT_SCHEMA = "bridge"
DEFAULT_POOL_SIZE = 10
SCHEMA_VERSION = 2
"""Kept in `{schema}.meta`; bump it with a migration step in `_MIGRATIONS`."""

_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_NOW = "extract(epoch from clock_timestamp())::float8"
# Keys compare byte-wise (COLLATE "C"), so a prefix is a contiguous index range.
_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS {s}.threads (
    key TEXT COLLATE "C" PRIMARY KEY, data TEXT NOT NULL, expires_at FLOAT8 NOT NULL);
CREATE INDEX IF NOT EXISTS threads_expiry ON {s}.threads (expires_at);
CREATE TABLE IF NOT EXISTS {s}.seen (id TEXT COLLATE "C" PRIMARY KEY, expires_at FLOAT8 NOT NULL);
CREATE INDEX IF NOT EXISTS seen_expiry ON {s}.seen (expires_at);
CREATE TABLE IF NOT EXISTS {s}.turns (
    turn_id TEXT COLLATE "C" PRIMARY KEY, started_at FLOAT8 NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS {s}.claims (
    turn_id TEXT COLLATE "C" PRIMARY KEY, expires_at FLOAT8 NOT NULL);
CREATE INDEX IF NOT EXISTS claims_expiry ON {s}.claims (expires_at);
CREATE TABLE IF NOT EXISTS {s}.locks (
    name TEXT COLLATE "C" PRIMARY KEY, owner TEXT NOT NULL, expires_at FLOAT8 NOT NULL);
CREATE TABLE IF NOT EXISTS {s}.secrets (name TEXT COLLATE "C" PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS {s}.records (
    name TEXT COLLATE "C" PRIMARY KEY, value TEXT NOT NULL, expires_at FLOAT8 NOT NULL);
CREATE INDEX IF NOT EXISTS records_expiry ON {s}.records (expires_at)
"""
_SCHEMA_V2 = """
CREATE TABLE IF NOT EXISTS {s}.buckets (
    key TEXT COLLATE "C" PRIMARY KEY, tokens FLOAT8 NOT NULL, at FLOAT8 NOT NULL,
    expires_at FLOAT8 NOT NULL, taken BOOLEAN NOT NULL);
CREATE INDEX IF NOT EXISTS buckets_expiry ON {s}.buckets (expires_at)
"""
_MIGRATIONS = {1: _SCHEMA_V1, 2: _SCHEMA_V2}
# `_retention.refill` as one statement: the conflicting row stays locked from the read to
# the write, so replicas take tokens one at a time. $2 = capacity, $3 = tokens per second;
# the new row's `at` is the one reading of the clock.
_LEVEL = "least($2::float8, buckets.tokens + greatest(0, excluded.at - buckets.at) * $3::float8)"
_TAKE_TOKEN_SQL = f"""
INSERT INTO {{s}}.buckets AS buckets (key, tokens, at, expires_at, taken)
VALUES ($1, $2::float8 - 1, {{now}}, {{now}} + $2::float8 / $3::float8, true)
ON CONFLICT (key) DO UPDATE SET
    tokens = CASE WHEN {_LEVEL} >= 1 THEN {_LEVEL} - 1 ELSE {_LEVEL} END,
    taken = {_LEVEL} >= 1, at = excluded.at, expires_at = excluded.at + $2::float8 / $3::float8
RETURNING tokens, taken
"""
_PUT_THREAD = (
    "INSERT INTO {{s}}.threads (key, data, expires_at) VALUES (${0}, ${1}, {{now}} + ${2}) "
    "ON CONFLICT (key) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at"
)
_RECORD_TURN = (
    "INSERT INTO {s}.turns (turn_id, started_at, data) VALUES ($1, $2, $3) "
    "ON CONFLICT (turn_id) DO UPDATE SET started_at = excluded.started_at, data = excluded.data"
)
# $1 = id, $2 = ttl: insert, or take over a row whose expiry has passed.
_MARK = (
    "INSERT INTO {{s}}.{table} ({column}, expires_at) VALUES ($1, {{now}} + $2) "
    "ON CONFLICT ({column}) DO UPDATE SET expires_at = excluded.expires_at "
    "WHERE {table}.expires_at <= {{now}}"
)
_ACQUIRE = (
    "INSERT INTO {s}.locks (name, owner, expires_at) VALUES ($1, $2, {now} + $3) "
    "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at "
    "WHERE locks.owner = excluded.owner OR locks.expires_at <= {now}"
)
_GET_THREAD = "SELECT data FROM {s}.threads WHERE key = $1 AND expires_at > {now}"
# The lock, then the mapping of $4 when the lock was taken. Every part reads the snapshot
# the statement took before it may wait on the lock row: when that snapshot holds another
# owner's live lease (`held`), the lock was let go since, maybe with a mapping written that
# the snapshot misses, so the caller reads the mapping again.
_ACQUIRE_READING_SQL = f"""
WITH held AS (SELECT 1 FROM {{s}}.locks WHERE name = $1 AND owner <> $2 AND expires_at > {{now}}),
taken AS ({_ACQUIRE} RETURNING 1)
SELECT EXISTS (SELECT 1 FROM taken), EXISTS (SELECT 1 FROM held),
    (SELECT data FROM {{s}}.threads WHERE key = $4 AND expires_at > {{now}}
     AND EXISTS (SELECT 1 FROM taken))
"""
_RECORD_TURN_AND_THREAD_SQL = f"WITH turn AS ({_RECORD_TURN}) {_PUT_THREAD.format(4, 5, 6)}"
# $3, $4 = lock and owner, both NULL when no lock is released.
_FINISH_TURN_SQL = f"""
WITH claim AS ({_MARK.format(table="claims", column="turn_id")} RETURNING 1),
dropped AS (DELETE FROM {{s}}.turns WHERE turn_id = $1),
released AS (DELETE FROM {{s}}.locks WHERE name = $3 AND owner = $4)
SELECT EXISTS (SELECT 1 FROM claim)
"""
_PURGE_EVERY = 256
# What leaves a connection unusable: lost or reset sockets, a protocol out of step, and
# the server ending the session (shutdown, restart, an administrator's terminate).
_BROKEN: tuple[type[BaseException], ...] = (
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.CannotConnectNowError,
    OSError,
)


def postgres_schema_sql(store: object) -> str:
    """`schema_sql` for the schema `store` uses when it is a `PostgresStore`, else the default."""
    return schema_sql(store.schema if isinstance(store, PostgresStore) else DEFAULT_SCHEMA)


def schema_sql(schema: str = DEFAULT_SCHEMA) -> str:
    """The DDL the store runs on first use, for operators whose migrations own the schema."""
    s = _quote(schema)
    lines = [
        f"CREATE SCHEMA IF NOT EXISTS {s};",
        f"CREATE TABLE IF NOT EXISTS {s}.meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);",
    ]
    for version in sorted(_MIGRATIONS):
        lines += [f"{statement.strip()};" for statement in _statements(version, s)]
    lines.append(
        f"INSERT INTO {s}.meta (name, value) VALUES ('schema_version', '{SCHEMA_VERSION}') "
        "ON CONFLICT (name) DO UPDATE SET value = excluded.value;"
    )
    return "\n".join(lines) + "\n"


def _statements(version: int, quoted_schema: str) -> list[str]:
    return [
        part for part in _MIGRATIONS[version].format(s=quoted_schema).split(";") if part.strip()
    ]


def _quote(schema: str) -> str:
    if not _NAME.fullmatch(schema):
        raise ConfigError(
            f"postgres schema name {schema!r} must be lower-case letters, digits and '_'",
            key="store.url",
        )
    return f'"{schema}"'


_OWN_PARAMETERS = ("schema", "pool_size")


def _split_url(url: str) -> tuple[str, dict[str, str]]:
    """Return the DSN asyncpg understands, and the store's own query parameters."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    own = {name: value for name, value in query if name in _OWN_PARAMETERS}
    rest = urlencode([(name, value) for name, value in query if name not in _OWN_PARAMETERS])
    scheme = "postgresql" if parts.scheme == "postgres" else parts.scheme
    return urlunsplit((scheme, parts.netloc, parts.path, rest, parts.fragment)), own


def _pool_size(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(
            f"postgres pool_size {value!r} must be a whole number of connections >= 1",
            key="store.url",
        )
    return int(value)


async def _keep_session(conn: Any) -> None:
    """Pool reset hook: the store leaves no session state behind (no SET, LISTEN or session
    locks; transactions are managed), so the default reset's extra round trip is skipped."""


def _changed(status: str) -> bool:
    """True when a command tag such as `INSERT 0 1` or `DELETE 3` counts a row."""
    return _count(status) > 0


def _count(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


def _thread(raw: str | None) -> ThreadRef | None:
    return None if raw is None else ThreadRef.model_validate_json(raw)


class PostgresStore(OpensAsContext):
    """A `SessionStore` in PostgreSQL, reached by `postgresql://user:pass@host:port/db`
    (`postgres://` too; `?schema=…` names the schema, default `bridge`; `?pool_size=N`
    the connections each replica keeps open, default 10; other query parameters are
    libpq-style connection options or server settings).

    On asyncpg: the lowest CPU per query of the Python drivers (binary protocol,
    prepared-statement cache per connection) and its own pool. The schema is created
    on first use unless `{schema}.meta` already says it is current.
    Every method raises `StoreError` when the database fails or the store is closed.
    """

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        thread_retention: float = DEFAULT_THREAD_RETENTION,
        claim_ttl: float = DEFAULT_CLAIM_TTL,
        pool_size: int | None = None,
        timeout: float = 10.0,
    ) -> None:
        require_positive("thread_retention", thread_retention)
        require_positive("claim_ttl", claim_ttl)
        self.url = url
        self._dsn, own = _split_url(url)
        self.schema = next(
            name for name in (schema, own.get("schema"), DEFAULT_SCHEMA) if name is not None
        )
        self._s = _quote(self.schema)  # raises ConfigError
        self._thread_retention = thread_retention
        self._claim_ttl = claim_ttl
        self.pool_size = pool_size or _pool_size(own.get("pool_size", str(DEFAULT_POOL_SIZE)))
        self._timeout = timeout
        self._pool: asyncpg.Pool | None = None
        self._opening = anyio.Lock()
        self._writes = 0

    @contextmanager
    def _translate_errors(self) -> Iterator[None]:
        """The one place where asyncpg and socket errors become `StoreError`."""
        try:
            yield
        except (*_BROKEN, asyncpg.PostgresError, TimeoutError) as exc:
            raise StoreError(
                f"postgres store failed: {type(exc).__name__}: {exc}", url=self.url
            ) from exc

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        """A pooled connection; one that broke is closed, and the pool reconnects the
        others on their next use (after a server restart they are all gone)."""
        pool = self._db
        with self._translate_errors():
            async with pool.acquire() as conn:
                try:
                    yield conn
                except _BROKEN:
                    await pool.expire_connections()
                    with suppress(asyncpg.InterfaceError):  # already detached from the pool
                        conn.terminate()
                    raise

    async def open(self) -> None:
        async with self._opening:
            if self._pool is None:
                await self._connect()

    async def _connect(self) -> None:
        with self._translate_errors():
            try:
                pool = await asyncpg.create_pool(
                    self._dsn,
                    # Opened warm: connecting during a burst of turns costs its tail latency.
                    min_size=self.pool_size,
                    max_size=self.pool_size,
                    timeout=self._timeout,
                    command_timeout=self._timeout,
                    reset=_keep_session,
                )
            except ValueError as exc:  # asyncpg's verdict on a malformed DSN
                raise StoreError(f"invalid postgres url: {exc}", url=self.url) from exc
            try:
                await self._migrate(pool)
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await pool.close()
                raise
        self._pool = pool

    async def _migrate(self, pool: asyncpg.Pool) -> None:
        async with pool.acquire() as conn:
            version = await self._schema_version(conn)
            if version == SCHEMA_VERSION:
                return  # current: no DDL, so a role without CREATE rights works
            async with conn.transaction():
                # Serialises first use by several processes; released at commit.
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", self.schema)
                await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {self._s}")
                await conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {self._s}.meta "
                    "(name TEXT PRIMARY KEY, value TEXT NOT NULL)"
                )
                version = await self._schema_version(conn) or 0
                if version > SCHEMA_VERSION:
                    raise StoreError(
                        f"database schema version {version} is newer than this bridge "
                        f"supports ({SCHEMA_VERSION})",
                        url=self.url,
                    )
                for step in range(version + 1, SCHEMA_VERSION + 1):
                    for statement in _statements(step, self._s):
                        await conn.execute(statement)
                await conn.execute(
                    f"INSERT INTO {self._s}.meta (name, value) VALUES ('schema_version', $1) "
                    "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    str(SCHEMA_VERSION),
                )

    async def _schema_version(self, conn: Any) -> int | None:
        table = await conn.fetchval("SELECT to_regclass($1)", f"{self._s}.meta")
        if table is None:
            return None
        value = await conn.fetchval(
            f"SELECT value FROM {self._s}.meta WHERE name = 'schema_version'"
        )
        return None if value is None else int(value)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            with self._translate_errors():
                await pool.close()

    @property
    def _db(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StoreError("store is not open", url=self.url)
        return self._pool

    async def _execute(self, sql: str, *args: Any, retry: bool = True) -> str:
        """Run one statement; returns its command tag. `retry`: the statement may run
        twice with the same outcome, so a connection that broke under it is retried once
        on a fresh one (after a server restart every pooled connection is broken)."""
        status: str = await self._call("execute", sql, args, retry=retry)
        return status

    async def _fetchval(self, sql: str, *args: Any) -> Any:
        """Run one statement (every one that reads can be retried); returns its first value."""
        return await self._call("fetchval", sql, args, retry=True)

    async def _call(self, method: str, sql: str, args: tuple[Any, ...], *, retry: bool) -> Any:
        query = sql.format(s=self._s, now=_NOW)
        try:
            async with self._connection() as conn:
                return await getattr(conn, method)(query, *args)
        except StoreError as exc:
            if not (retry and isinstance(exc.__cause__, _BROKEN)):
                raise
            logger.info("postgres connection lost (%s); retrying on a fresh one", exc.__cause__)
        async with self._connection() as conn:
            return await getattr(conn, method)(query, *args)

    async def _purge_now_and_then(self) -> None:
        """Every few hundred writes, drop the rows whose retention has passed."""
        self._writes += 1
        if self._writes % _PURGE_EVERY == 0:
            for table in ("threads", "seen", "claims", "records", "buckets"):
                await self._execute(f"DELETE FROM {{s}}.{table} WHERE expires_at <= {{now}}")

    # -- conversation key -> thread --------------------------------------
    async def get_thread(self, key: str) -> ThreadRef | None:
        return _thread(await self._fetchval(_GET_THREAD, key))

    async def put_thread(self, key: str, ref: ThreadRef) -> None:
        await self._execute(
            _PUT_THREAD.format(1, 2, 3), key, ref.model_dump_json(), self._thread_retention
        )
        await self._purge_now_and_then()

    async def delete_thread(self, key: str) -> bool:
        return _changed(
            await self._execute(
                "DELETE FROM {s}.threads WHERE key = $1 AND expires_at > {now}", key, retry=False
            )
        )

    async def delete_threads(self, prefix: str) -> int:
        return _count(
            await self._execute(
                "DELETE FROM {s}.threads WHERE key >= $1 AND starts_with(key, $1) "
                "AND expires_at > {now}",
                prefix,
                retry=False,
            )
        )

    # -- inbound dedupe ----------------------------------------------------
    async def mark_seen(self, delivery_id: str, ttl: float) -> bool:
        require_positive("ttl", ttl)
        return await self._mark("seen", "id", delivery_id, ttl)

    async def _mark(self, table: str, column: str, ident: str, ttl: float) -> bool:
        """Insert, or take over a row whose expiry has passed; True when either happened."""
        status = await self._execute(
            _MARK.format(table=table, column=column),
            ident,
            ttl,
            retry=False,  # a first run that committed unseen would make the retry say False
        )
        await self._purge_now_and_then()
        return _changed(status)

    # -- in-flight ledger --------------------------------------------------
    async def record_turn(self, turn: InFlightTurn, *, thread: ThreadRef | None = None) -> None:
        row = (turn.turn_id, turn.started_at, turn.model_dump_json())
        if thread is None:
            await self._execute(_RECORD_TURN, *row)
            return
        mapping = (turn.key, thread.model_dump_json(), self._thread_retention)
        await self._execute(_RECORD_TURN_AND_THREAD_SQL, *row, *mapping)
        await self._purge_now_and_then()

    async def get_turn(self, turn_id: str) -> InFlightTurn | None:
        raw = await self._fetchval("SELECT data FROM {s}.turns WHERE turn_id = $1", turn_id)
        return None if raw is None else InFlightTurn.model_validate_json(raw)

    async def list_turns(self) -> list[InFlightTurn]:
        rows = await self._call(
            "fetch", "SELECT data FROM {s}.turns ORDER BY started_at, turn_id", (), retry=True
        )
        return [InFlightTurn.model_validate_json(row[0]) for row in rows]

    async def claim_delivery(self, turn_id: str) -> bool:
        return await self._mark("claims", "turn_id", turn_id, self._claim_ttl)

    async def drop_turn(self, turn_id: str) -> None:
        await self._execute("DELETE FROM {s}.turns WHERE turn_id = $1", turn_id)

    async def finish_turn(
        self, turn_id: str, *, lock: str | None = None, owner: str | None = None
    ) -> bool:
        claimed = await self._call(
            "fetchval",
            _FINISH_TURN_SQL,
            (turn_id, self._claim_ttl, lock, owner),
            retry=False,  # a first run that committed unseen would make the retry say False
        )
        await self._purge_now_and_then()
        return bool(claimed)

    # -- leased locks ------------------------------------------------------
    async def acquire_lock(self, name: str, owner: str, lease: float) -> bool:
        require_positive("lease", lease)
        return _changed(await self._execute(_ACQUIRE, name, owner, lease))

    async def acquire_lock_and_get_thread(
        self, name: str, owner: str, lease: float, key: str
    ) -> tuple[bool, ThreadRef | None]:
        require_positive("lease", lease)
        taken, held, raw = await self._call(
            "fetchrow", _ACQUIRE_READING_SQL, (name, owner, lease, key), retry=True
        )
        if taken and held:  # taken as its holder let go: that holder's mapping is newer
            raw = await self._fetchval(_GET_THREAD, key)
        return bool(taken), _thread(raw)

    async def renew_lock(self, name: str, owner: str, lease: float) -> bool:
        require_positive("lease", lease)
        status = await self._execute(
            "UPDATE {s}.locks SET expires_at = {now} + $3 "
            "WHERE name = $1 AND owner = $2 AND expires_at > {now}",
            name,
            owner,
            lease,
        )
        return _changed(status)

    async def release_lock(self, name: str, owner: str) -> None:
        await self._execute("DELETE FROM {s}.locks WHERE name = $1 AND owner = $2", name, owner)

    async def lock_owner(self, name: str) -> str | None:
        holder = await self._fetchval(
            "SELECT owner FROM {s}.locks WHERE name = $1 AND expires_at > {now}", name
        )
        return None if holder is None else str(holder)

    # -- shared secrets ----------------------------------------------------
    async def ensure_secret(self, name: str, candidate: str) -> str:
        """Store `candidate` under `name` unless a value is there already; return the stored
        value. Atomic: concurrent callers on every replica get the same value."""
        stored = await self._fetchval(
            "INSERT INTO {s}.secrets (name, value) VALUES ($1, $2) "
            "ON CONFLICT (name) DO NOTHING RETURNING value",
            name,
            candidate,
        )
        if stored is None:  # another caller's value won; a new statement sees it committed
            stored = await self._fetchval("SELECT value FROM {s}.secrets WHERE name = $1", name)
        if stored is None:
            raise StoreError(f"secret {name!r} vanished while being read", url=self.url)
        return str(stored)

    # -- short-lived records -----------------------------------------------
    async def put_record(self, name: str, value: str, ttl: float) -> None:
        """Insert or replace a small value under `name` that expires after `ttl` seconds."""
        require_positive("ttl", ttl)
        await self._execute(
            "INSERT INTO {s}.records (name, value, expires_at) VALUES ($1, $2, {now} + $3) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
            name,
            value,
            ttl,
        )
        await self._purge_now_and_then()

    async def get_record(self, name: str) -> str | None:
        """The unexpired value under `name`, or None."""
        value = await self._fetchval(
            "SELECT value FROM {s}.records WHERE name = $1 AND expires_at > {now}", name
        )
        return None if value is None else str(value)

    # -- shared rate limits ------------------------------------------------
    async def take_token(self, key: str, *, capacity: float, refill_per_second: float) -> float:
        require_bucket(capacity, refill_per_second)
        row = await self._call(
            "fetchrow",
            _TAKE_TOKEN_SQL,
            (key, float(capacity), float(refill_per_second)),
            retry=False,  # a first run that committed unseen would take a second token
        )
        await self._purge_now_and_then()
        tokens, taken = float(row[0]), bool(row[1])
        return 0.0 if taken else (1.0 - tokens) / refill_per_second
