"""`TtlCache`: a value per key loaded once per lifetime, nothing kept from a failed load,
and keys unused for two lifetimes forgotten."""

from __future__ import annotations

import pytest

from bridge.chat import TtlCache


class Loads:
    def __init__(self) -> None:
        self.keys: list[str] = []

    async def __call__(self, key: str) -> str:
        self.keys.append(key)
        return key.upper()


async def test_a_value_is_loaded_once_per_lifetime() -> None:
    loads, cache = Loads(), TtlCache[str, str](60)
    assert [await cache.get(k, lambda k=k: loads(k)) for k in ("a", "b", "a")] == ["A", "B", "A"]
    assert loads.keys == ["a", "b"]


async def test_expired_values_are_loaded_again_and_unused_keys_forgotten() -> None:
    loads, cache = Loads(), TtlCache[str, str](0)
    for key in ("a", "b", "a"):
        await cache.get(key, lambda key=key: loads(key))
    assert loads.keys == ["a", "b", "a"]
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
