"""Values a surface looks up per key on its platform (a profile, an admin check), kept for
a while and bounded: what was not used for two lifetimes is forgotten."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable, Iterator
from typing import Generic, TypeVar

__all__ = ["TtlCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """Each key's value, loaded on first use and kept `ttl` seconds. Expired entries are
    dropped at most once per `ttl`, so the cache holds the keys used within two `ttl`s.
    Iterating gives the keys held."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[K, tuple[float, V]] = {}
        self._next_prune = 0.0

    def __iter__(self) -> Iterator[K]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        """The value of `key`, from `load()` when none is held or it expired. Raises what
        `load` raised (and keeps nothing)."""
        held = self._entries.get(key)
        if held is not None and held[0] > time.monotonic():
            return held[1]
        value = await load()
        now = time.monotonic()
        if now >= self._next_prune:
            self._next_prune = now + self.ttl
            for stale in [k for k, (until, _) in self._entries.items() if until <= now]:
                del self._entries[stale]
        self._entries[key] = (now + self.ttl, value)
        return value
