"""Session stores: the `SessionStore` protocol, its implementations, and `open_store(url)`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from bridge.errors import ConfigError
from bridge.stores._base import InFlightTurn, PlatformMessage, SessionStore, ThreadRef
from bridge.stores._lease import hold_lease
from bridge.stores._retention import DEFAULT_CLAIM_TTL, DEFAULT_THREAD_RETENTION
from bridge.stores.memory import MemoryStore
from bridge.stores.sqlite import SQLiteStore

if TYPE_CHECKING:
    from bridge.stores.postgres import PostgresStore
    from bridge.stores.redis import RedisStore

__all__ = [
    "InFlightTurn",
    "MemoryStore",
    "PlatformMessage",
    "PostgresStore",
    "RedisStore",
    "SQLiteStore",
    "SessionStore",
    "ThreadRef",
    "hold_lease",
    "open_store",
]


def __getattr__(name: str) -> Any:
    # The Redis client (and the telemetry it loads) and the Postgres driver are imported
    # only when a store needs them.
    if name == "RedisStore":
        from bridge.stores.redis import RedisStore

        return RedisStore
    if name == "PostgresStore":
        from bridge.stores.postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_REDIS_SCHEMES = frozenset({"redis", "rediss", "unix", "redis+unix"})
_POSTGRES_SCHEMES = frozenset({"postgresql", "postgres"})


def open_store(
    url: str,
    *,
    thread_retention: float = DEFAULT_THREAD_RETENTION,
    claim_ttl: float = DEFAULT_CLAIM_TTL,
) -> SessionStore:
    """Build the store a URL names; call `await store.open()` before use.

    - `memory://`: process-local, for tests;
    - `sqlite:///relative/path.db`, `sqlite:////absolute/path.db`: embedded default;
    - `redis://host:port/db`, `rediss://…`, `unix:///path/redis.sock`,
      `redis+unix:///path/redis.sock` (optional `?prefix=…`): shared by replicas;
    - `postgresql://user:pass@host:port/db`, `postgres://…` (optional `?schema=…`):
      shared by replicas, durable.

    A conversation key's thread is forgotten `thread_retention` seconds after its last
    turn; the record that an answer was delivered, `claim_ttl` seconds after delivery.

    Raises `ConfigError` (key `store.url`) for an unknown scheme or a missing path.
    """
    scheme, sep, _ = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise ConfigError(f"store url {url!r} has no scheme", key="store.url")
    if scheme == "memory":
        return MemoryStore(url, thread_retention=thread_retention, claim_ttl=claim_ttl)
    if scheme == "sqlite":
        # SQLAlchemy's convention: the path follows the third slash, so an
        # absolute path shows four.
        path = unquote(urlsplit(url).path)[1:]
        if not path:
            raise ConfigError(f"sqlite store url {url!r} names no file", key="store.url")
        return SQLiteStore(path, url=url, thread_retention=thread_retention, claim_ttl=claim_ttl)
    if scheme in _REDIS_SCHEMES:
        from bridge.stores.redis import RedisStore

        return RedisStore(url, thread_retention=thread_retention, claim_ttl=claim_ttl)
    if scheme in _POSTGRES_SCHEMES:
        from bridge.stores.postgres import PostgresStore

        return PostgresStore(url, thread_retention=thread_retention, claim_ttl=claim_ttl)
    raise ConfigError(
        f"unknown store scheme {scheme!r} in {url!r}; expected memory://, sqlite:///…, "
        "redis://…, rediss://…, unix://…, redis+unix://… or postgresql://…",
        key="store.url",
    )
