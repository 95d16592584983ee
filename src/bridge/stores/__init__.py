"""Session stores: the `SessionStore` protocol, its implementations, and `open_store(url)`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from bridge.errors import ConfigError
from bridge.stores._base import InFlightTurn, PlatformMessage, SessionStore, ThreadRef
from bridge.stores.memory import MemoryStore
from bridge.stores.sqlite import SQLiteStore

if TYPE_CHECKING:
    from bridge.stores.redis import RedisStore

__all__ = [
    "InFlightTurn",
    "MemoryStore",
    "PlatformMessage",
    "RedisStore",
    "SQLiteStore",
    "SessionStore",
    "ThreadRef",
    "open_store",
]


def __getattr__(name: str) -> Any:
    # The Redis client (and the telemetry it loads) is imported only when a store needs it.
    if name == "RedisStore":
        from bridge.stores.redis import RedisStore

        return RedisStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_REDIS_SCHEMES = frozenset({"redis", "rediss", "unix", "redis+unix"})


def open_store(url: str) -> SessionStore:
    """Build the store a URL names; call `await store.open()` before use.

    - `memory://`: process-local, for tests;
    - `sqlite:///relative/path.db`, `sqlite:////absolute/path.db`: embedded default;
    - `redis://host:port/db`, `rediss://…`, `unix:///path/redis.sock`,
      `redis+unix:///path/redis.sock` (optional `?prefix=…`): shared by replicas.

    Raises `ConfigError` (key `store.url`) for an unknown scheme or a missing path.
    """
    scheme, sep, _ = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise ConfigError(f"store url {url!r} has no scheme", key="store.url")
    if scheme == "memory":
        return MemoryStore(url)
    if scheme == "sqlite":
        # SQLAlchemy's convention: the path follows the third slash, so an
        # absolute path shows four.
        path = unquote(urlsplit(url).path)[1:]
        if not path:
            raise ConfigError(f"sqlite store url {url!r} names no file", key="store.url")
        return SQLiteStore(path, url=url)
    if scheme in _REDIS_SCHEMES:
        from bridge.stores.redis import RedisStore

        return RedisStore(url)
    raise ConfigError(
        f"unknown store scheme {scheme!r} in {url!r}; expected memory://, sqlite:///…, "
        "redis://…, rediss://…, unix://… or redis+unix://…",
        key="store.url",
    )
