"""Redis store: all state under its key prefix, TTLs on dedupe, one winner across processes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio

from bridge.errors import StoreError
from bridge.stores import InFlightTurn, RedisStore, ThreadRef, open_store
from bridge.stores.memory import DEFAULT_CLAIM_TTL
from bridge.testing import eventually


@pytest.fixture
async def raw_redis(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


async def test_redis_store_keeps_every_key_under_its_prefix(
    redis_url: str, unique_prefix: str, raw_redis: redis.asyncio.Redis
) -> None:
    turn = InFlightTurn(
        turn_id="t1", key="k", adapter="slack", agent_id="a", text="hi", source="mcp"
    )
    async with RedisStore(redis_url, prefix=unique_prefix) as store:
        await store.put_thread("slack:T1/C1:1.0", ThreadRef(task_id="t", agent_id="a"))
        await store.record_turn(turn)
        await store.mark_seen("ev", 60)
        await store.claim_delivery("t1")
        await store.acquire_lock("turn:k", "a", 60)
    keys = set(await raw_redis.keys(f"{unique_prefix}*"))
    assert len(keys) == 7
    assert all(key.startswith(unique_prefix) for key in keys)


async def test_redis_store_expires_thread_dedupe_and_claim_keys(
    redis_url: str, unique_prefix: str, raw_redis: redis.asyncio.Redis
) -> None:
    async with RedisStore(redis_url, prefix=unique_prefix, thread_retention=3600) as store:
        await store.put_thread("k", ThreadRef(task_id="t", agent_id="a"))
        await store.mark_seen("ev", 60)
        await store.claim_delivery("t1")
    assert 3_540_000 < await raw_redis.pttl(f"{unique_prefix}thread:k") <= 3_600_000
    assert 0 < await raw_redis.pttl(f"{unique_prefix}seen:ev") <= 60_000
    claim_ttl = await raw_redis.pttl(f"{unique_prefix}claim:t1")
    assert DEFAULT_CLAIM_TTL * 1000 - 60_000 < claim_ttl <= DEFAULT_CLAIM_TTL * 1000


async def test_redis_thread_indexes_forget_expired_threads(
    redis_url: str, unique_prefix: str, raw_redis: redis.asyncio.Redis
) -> None:
    async with RedisStore(redis_url, prefix=unique_prefix, thread_retention=0.05) as short:
        for index in range(20):
            await short.put_thread(f"old-{index}", ThreadRef(task_id="t", agent_id="a"))

        async def expired() -> bool:
            return await raw_redis.exists(f"{unique_prefix}thread:old-19") == 0

        await eventually(expired)
    async with RedisStore(redis_url, prefix=unique_prefix) as store:
        await store.put_thread("new", ThreadRef(task_id="t", agent_id="a"))
    assert await raw_redis.zrange(f"{unique_prefix}threads", 0, -1) == ["new"]
    assert await raw_redis.zrange(f"{unique_prefix}threads-expiry", 0, -1) == ["new"]


async def test_redis_stores_share_state_through_the_server(
    redis_url: str, unique_prefix: str
) -> None:
    ref = ThreadRef(task_id="t", agent_id="a")
    async with (
        RedisStore(redis_url, prefix=unique_prefix) as first,
        RedisStore(redis_url, prefix=unique_prefix) as second,
    ):
        await first.put_thread("k", ref)
        assert await second.get_thread("k") == ref
        assert await first.acquire_lock("lock", "a", 60) is True
        assert await second.acquire_lock("lock", "b", 60) is False
        assert await second.delete_threads("") == 1
        assert await first.get_thread("k") is None


async def test_redis_stores_with_different_prefixes_do_not_see_each_other(
    redis_url: str, unique_prefix: str
) -> None:
    async with (
        RedisStore(redis_url, prefix=unique_prefix + "a:") as first,
        RedisStore(redis_url, prefix=unique_prefix + "b:") as second,
    ):
        await first.put_thread("k", ThreadRef(task_id="t", agent_id="a"))
        assert await second.get_thread("k") is None
        assert await second.mark_seen("ev", 60) is True
        assert await first.mark_seen("ev", 60) is True


async def test_redis_url_may_use_the_redis_unix_scheme_and_name_a_prefix(
    redis_url: str, unique_prefix: str, raw_redis: redis.asyncio.Redis
) -> None:
    path = redis_url.removeprefix("unix://")
    store = open_store(f"redis+unix://{path}?prefix={unique_prefix}")
    assert isinstance(store, RedisStore)
    assert store.prefix == unique_prefix
    async with store:
        assert await store.mark_seen("ev", 60) is True
    assert await raw_redis.exists(f"{unique_prefix}seen:ev") == 1


async def test_redis_store_reports_an_unreachable_server(tmp_path: object) -> None:
    url = f"unix://{tmp_path}/no-such-redis.sock"
    store = RedisStore(url)
    with pytest.raises(StoreError) as caught:
        await store.open()
    assert caught.value.url == url
    with pytest.raises(StoreError):
        await store.get_thread("k")


async def test_redis_bucket_expires_once_it_would_be_full_again(
    redis_url: str, unique_prefix: str, raw_redis: redis.asyncio.Redis
) -> None:
    async with RedisStore(redis_url, prefix=unique_prefix) as store:
        assert await store.take_token("telegram|7", capacity=20, refill_per_second=1 / 3) == 0.0
    assert 59_000 < await raw_redis.pttl(f"{unique_prefix}bucket:telegram|7") <= 60_000
