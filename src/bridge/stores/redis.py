"""`redis://…` / `unix://…`: the scale-out `SessionStore`, shared by every replica.

All state lives in Redis under one key prefix (default `bridge:`); atomic steps
are single commands (`SET NX PX`) or Lua scripts. Targets standalone Redis.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import anyio
import redis.asyncio
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from bridge.errors import StoreError
from bridge.stores._base import InFlightTurn, OpensAsContext, ThreadRef
from bridge.stores._retention import (
    DEFAULT_CLAIM_TTL,
    DEFAULT_THREAD_RETENTION,
    require_bucket,
)
from bridge.stores._retention import require_positive as _require_positive

__all__ = ["DEFAULT_PREFIX", "RedisStore"]

DEFAULT_PREFIX = "bridge:"

# KEYS[1] = lock key; ARGV = owner, lease in ms.
_ACQUIRE_LUA = """
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
_RENEW_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
# Thread values expire by PX; two sorted sets index their keys: KEYS[2] by name (all
# scores 0, so ordered by bytes) for prefix deletes, KEYS[3] by expiry (ms) so that
# each put prunes a few index entries whose value has expired.
# KEYS[1] = thread key; ARGV = value, retention ms, conversation key, now ms.
_PUT_THREAD_STEPS = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], 0, ARGV[3])
redis.call('ZADD', KEYS[3], tonumber(ARGV[4]) + tonumber(ARGV[2]), ARGV[3])
local stale = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[4], 'LIMIT', 0, 64)
if #stale > 0 then
  redis.call('ZREM', KEYS[2], unpack(stale))
  redis.call('ZREM', KEYS[3], unpack(stale))
end
"""
_PUT_THREAD_LUA = _PUT_THREAD_STEPS + "return 1\n"
# `record_turn` with a thread: the turn into the ledger, then `_PUT_THREAD_STEPS`.
# KEYS[1..3] and ARGV[1..4] as there; KEYS[4] = ledger hash; ARGV[5..6] = turn id, turn.
_RECORD_TURN_LUA = (
    "redis.call('HSET', KEYS[4], ARGV[5], ARGV[6])\n" + _PUT_THREAD_STEPS + "return 1\n"
)
# KEYS[1] = lock key, KEYS[2] = thread key; ARGV = owner, lease in ms. Returns {1, value}
# ({1} without a mapping) when the lock was taken, else {0}: the mapping is read only then.
_ACQUIRE_READING_LUA = """
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {1, redis.call('GET', KEYS[2])}
end
return {0}
"""
# KEYS[1] = claim key, KEYS[2] = ledger hash, KEYS[3] (optional) = lock key;
# ARGV = turn id, claim ttl in ms, lock owner. Returns 1 when the claim was made.
_FINISH_TURN_LUA = """
local claimed = redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[1])
if KEYS[3] and redis.call('GET', KEYS[3]) == ARGV[3] then
  redis.call('DEL', KEYS[3])
end
if claimed then return 1 end
return 0
"""
# ARGV = literal key prefix, key-name prefix of the thread values. '\255' never
# occurs in UTF-8, so '(' .. prefix .. '\255' bounds every key starting with prefix.
# Counts only values that still existed (an expired one is gone already).
_DELETE_THREADS_LUA = """
local low, high = '[' .. ARGV[1], '(' .. ARGV[1] .. '\\255'
local keys = redis.call('ZRANGEBYLEX', KEYS[1], low, high)
local deleted = 0
for _, key in ipairs(keys) do
  deleted = deleted + redis.call('DEL', ARGV[2] .. key)
  redis.call('ZREM', KEYS[2], key)
end
redis.call('ZREMRANGEBYLEX', KEYS[1], low, high)
return deleted
"""
# The token bucket of `_retention.refill`, on the server's clock (replicas' clocks need not
# agree). Numbers cross as strings: Redis truncates a Lua number it is given back.
# KEYS[1] = bucket key; ARGV = capacity, tokens per second.
_TAKE_TOKEN_LUA = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local capacity, rate = tonumber(ARGV[1]), tonumber(ARGV[2])
local held = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = capacity, now
if held[1] then tokens, at = tonumber(held[1]), tonumber(held[2]) end
local level = math.min(capacity, tokens + math.max(0, now - at) * rate)
local wait = 0
if level >= 1 then level = level - 1 else wait = (1 - level) / rate end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', level),
  'at', string.format('%.17g', now))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate * 1000))
return string.format('%.17g', wait)
"""
_SCRIPTS = {
    "acquire": _ACQUIRE_LUA,
    "renew": _RENEW_LUA,
    "release": _RELEASE_LUA,
    "put_thread": _PUT_THREAD_LUA,
    "record_turn": _RECORD_TURN_LUA,
    "acquire_reading": _ACQUIRE_READING_LUA,
    "finish_turn": _FINISH_TURN_LUA,
    "delete_threads": _DELETE_THREADS_LUA,
    "take_token": _TAKE_TOKEN_LUA,
}


def _millis(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


def _split_url(url: str) -> tuple[str, str | None]:
    """Return the URL redis-py understands, and the `prefix` query parameter if any."""
    parts = urlsplit(url)
    scheme = "unix" if parts.scheme == "redis+unix" else parts.scheme
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = next((value for name, value in query if name == "prefix"), None)
    rest = urlencode([(name, value) for name, value in query if name != "prefix"])
    return urlunsplit((scheme, parts.netloc, parts.path, rest, parts.fragment)), prefix


class RedisStore(OpensAsContext):
    """A `SessionStore` in Redis, reached by `redis://host:port/db`, `rediss://…`,
    `unix:///path.sock` or `redis+unix:///path.sock` (`?prefix=…` sets the key prefix).

    Every method raises `StoreError` when Redis fails or the store is closed.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str | None = None,
        thread_retention: float = DEFAULT_THREAD_RETENTION,
        claim_ttl: float = DEFAULT_CLAIM_TTL,
        socket_timeout: float = 5.0,
    ) -> None:
        _require_positive("thread_retention", thread_retention)
        _require_positive("claim_ttl", claim_ttl)
        self._thread_retention_ms = _millis(thread_retention)
        self.url = url
        self._client_url, url_prefix = _split_url(url)
        self.prefix = prefix if prefix is not None else (url_prefix or DEFAULT_PREFIX)
        self._claim_ttl_ms = _millis(claim_ttl)
        self._socket_timeout = socket_timeout
        self._client: redis.asyncio.Redis | None = None
        self._scripts: dict[str, AsyncScript] = {}
        self._opening = anyio.Lock()

    @contextmanager
    def _translate_errors(self) -> Iterator[None]:
        """The one place where redis-py and socket errors become `StoreError`."""
        try:
            yield
        except (RedisError, OSError) as exc:
            raise StoreError(f"redis store failed: {exc}", url=self.url) from exc

    async def open(self) -> None:
        async with self._opening:
            if self._client is None:
                await self._connect()

    async def _connect(self) -> None:
        try:
            # A blocking pool: under a burst, callers wait for a connection instead of
            # failing with "Too many connections".
            pool = redis.asyncio.BlockingConnectionPool.from_url(
                self._client_url,
                decode_responses=True,
                socket_timeout=self._socket_timeout,
                socket_connect_timeout=self._socket_timeout,
                max_connections=64,
                timeout=30,
            )
            client = redis.asyncio.Redis.from_pool(pool)  # the client owns and closes the pool
        except ValueError as exc:  # redis-py's verdict on a malformed URL
            raise StoreError(f"invalid redis url: {exc}", url=self.url) from exc
        try:
            with self._translate_errors():
                await client.ping()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await client.aclose()
            raise
        self._client = client
        self._scripts = {name: client.register_script(lua) for name, lua in _SCRIPTS.items()}

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with self._translate_errors():
                await client.aclose()

    @property
    def _redis(self) -> redis.asyncio.Redis:
        if self._client is None:
            raise StoreError("store is not open", url=self.url)
        return self._client

    def _key(self, kind: str, name: str = "") -> str:
        return f"{self.prefix}{kind}{name}"

    # -- conversation key -> thread --------------------------------------
    async def get_thread(self, key: str) -> ThreadRef | None:
        with self._translate_errors():
            raw: str | bytes | None = await self._redis.get(self._key("thread:", key))
        return None if raw is None else ThreadRef.model_validate_json(raw)

    async def put_thread(self, key: str, ref: ThreadRef) -> None:
        keys, args = self._thread_put(key, ref)
        with self._translate_errors():
            await self._call("put_thread", keys, args)

    def _thread_put(self, key: str, ref: ThreadRef) -> tuple[list[str], list[Any]]:
        """The keys and arguments of `_PUT_THREAD_STEPS`."""
        keys = [self._key("thread:", key), self._key("threads"), self._key("threads-expiry")]
        args = [ref.model_dump_json(), self._thread_retention_ms, key, int(time.time() * 1000)]
        return keys, args

    async def delete_thread(self, key: str) -> bool:
        with self._translate_errors():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(self._key("thread:", key))
                pipe.zrem(self._key("threads"), key)
                pipe.zrem(self._key("threads-expiry"), key)
                deleted, _, _ = await pipe.execute()
        return bool(deleted)

    async def delete_threads(self, prefix: str) -> int:
        keys = [self._key("threads"), self._key("threads-expiry")]
        with self._translate_errors():
            count = await self._call("delete_threads", keys, [prefix, self._key("thread:")])
        return int(count)

    # -- inbound dedupe ----------------------------------------------------
    async def mark_seen(self, delivery_id: str, ttl: float) -> bool:
        _require_positive("ttl", ttl)
        with self._translate_errors():
            created = await self._redis.set(
                self._key("seen:", delivery_id), "1", nx=True, px=_millis(ttl)
            )
        return bool(created)

    # -- in-flight ledger --------------------------------------------------
    async def record_turn(self, turn: InFlightTurn, *, thread: ThreadRef | None = None) -> None:
        if thread is None:
            with self._translate_errors():
                await self._redis.hset(self._key("turns"), turn.turn_id, turn.model_dump_json())
            return
        keys, args = self._thread_put(turn.key, thread)
        keys.append(self._key("turns"))
        args += [turn.turn_id, turn.model_dump_json()]
        with self._translate_errors():
            await self._call("record_turn", keys, args)

    async def get_turn(self, turn_id: str) -> InFlightTurn | None:
        with self._translate_errors():
            raw: str | bytes | None = await self._redis.hget(self._key("turns"), turn_id)
        return None if raw is None else InFlightTurn.model_validate_json(raw)

    async def list_turns(self) -> list[InFlightTurn]:
        with self._translate_errors():
            values: list[str | bytes] = await self._redis.hvals(self._key("turns"))
        turns = [InFlightTurn.model_validate_json(raw) for raw in values]
        return sorted(turns, key=lambda turn: (turn.started_at, turn.turn_id))

    async def claim_delivery(self, turn_id: str) -> bool:
        with self._translate_errors():
            created = await self._redis.set(
                self._key("claim:", turn_id), "1", nx=True, px=self._claim_ttl_ms
            )
        return bool(created)

    async def drop_turn(self, turn_id: str) -> None:
        with self._translate_errors():
            await self._redis.hdel(self._key("turns"), turn_id)

    async def finish_turn(
        self, turn_id: str, *, lock: str | None = None, owner: str | None = None
    ) -> bool:
        keys = [self._key("claim:", turn_id), self._key("turns")]
        args: list[Any] = [turn_id, self._claim_ttl_ms]
        if lock is not None and owner is not None:  # no owner: a release of nothing
            keys.append(self._key("lock:", lock))
            args.append(owner)
        with self._translate_errors():
            claimed = await self._call("finish_turn", keys, args)
        return bool(claimed)

    # -- leased locks ------------------------------------------------------
    async def acquire_lock(self, name: str, owner: str, lease: float) -> bool:
        _require_positive("lease", lease)
        with self._translate_errors():
            taken = await self._call("acquire", [self._key("lock:", name)], [owner, _millis(lease)])
        return bool(taken)

    async def acquire_lock_and_get_thread(
        self, name: str, owner: str, lease: float, key: str
    ) -> tuple[bool, ThreadRef | None]:
        _require_positive("lease", lease)
        keys = [self._key("lock:", name), self._key("thread:", key)]
        with self._translate_errors():
            reply = await self._call("acquire_reading", keys, [owner, _millis(lease)])
        raw = reply[1] if len(reply) > 1 else None
        return bool(reply[0]), None if raw is None else ThreadRef.model_validate_json(raw)

    async def renew_lock(self, name: str, owner: str, lease: float) -> bool:
        _require_positive("lease", lease)
        with self._translate_errors():
            renewed = await self._call("renew", [self._key("lock:", name)], [owner, _millis(lease)])
        return bool(renewed)

    async def release_lock(self, name: str, owner: str) -> None:
        with self._translate_errors():
            await self._call("release", [self._key("lock:", name)], [owner])

    async def lock_owner(self, name: str) -> str | None:
        with self._translate_errors():
            holder: str | bytes | None = await self._redis.get(self._key("lock:", name))
        return holder.decode() if isinstance(holder, bytes) else holder

    # -- shared secrets ----------------------------------------------------
    async def ensure_secret(self, name: str, candidate: str) -> str:
        with self._translate_errors():
            key = self._key("secret:", name)
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(key, candidate, nx=True)
                pipe.get(key)
                _, stored = await pipe.execute()
        return stored.decode() if isinstance(stored, bytes) else str(stored)

    # -- short-lived records -----------------------------------------------
    async def put_record(self, name: str, value: str, ttl: float) -> None:
        _require_positive("ttl", ttl)
        with self._translate_errors():
            await self._redis.set(self._key("record:", name), value, px=_millis(ttl))

    async def get_record(self, name: str) -> str | None:
        with self._translate_errors():
            raw: str | bytes | None = await self._redis.get(self._key("record:", name))
        return raw.decode() if isinstance(raw, bytes) else raw

    # -- shared rate limits ------------------------------------------------
    async def take_token(self, key: str, *, capacity: float, refill_per_second: float) -> float:
        require_bucket(capacity, refill_per_second)
        with self._translate_errors():
            wait = await self._call(
                "take_token", [self._key("bucket:", key)], [repr(capacity), repr(refill_per_second)]
            )
        return float(wait)

    async def _call(self, script: str, keys: list[str], args: list[Any]) -> Any:
        """Run one of `_SCRIPTS` (EVALSHA, loading it on first use)."""
        client = self._redis
        return await self._scripts[script](keys=keys, args=args, client=client)
