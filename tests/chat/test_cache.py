"""`TtlCache`: a value per key loaded once per lifetime, nothing kept from a failed load,
and keys unused for two lifetimes forgotten."""

from __future__ import annotations

import time

import anyio
import pytest

from bridge.chat import TtlCache

TTL = 0.05


async def _past(seconds: float) -> None:
    """Let `seconds` of monotonic time pass: entries expire by clock, not by an event."""
    deadline = time.monotonic() + seconds
    with anyio.fail_after(5):
        while time.monotonic() <= deadline:  # noqa: ASYNC110
            await anyio.sleep(seconds / 4)


async def test_a_value_is_loaded_once_per_lifetime_and_unused_keys_are_forgotten() -> None:
    loads: list[str] = []
    cache = TtlCache[str, str](TTL)

    async def load(key: str) -> str:
        loads.append(key)
        return key.upper()

    assert [await cache.get(k, lambda k=k: load(k)) for k in ("a", "b", "a")] == ["A", "B", "A"]
    assert loads == ["a", "b"]
    await _past(TTL * 2)
    assert await cache.get("a", lambda: load("a")) == "A"
    assert loads == ["a", "b", "a"]
    assert list(cache) == ["a"]


async def test_a_failed_load_keeps_nothing() -> None:
    cache = TtlCache[str, int](60)

    async def failing() -> int:
        raise LookupError("down")

    async def working() -> int:
        return 1

    with pytest.raises(LookupError):
        await cache.get("k", failing)
    assert len(cache) == 0
    assert await cache.get("k", working) == 1
