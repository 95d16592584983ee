"""`open_store(url)` picks the implementation and its location from the URL."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from pydantic import ValidationError

from bridge.config import StoreConfig
from bridge.errors import ConfigError
from bridge.stores import (
    MemoryStore,
    PostgresStore,
    RedisStore,
    SessionStore,
    SQLiteStore,
    open_store,
)
from bridge.testing import RETENTION, RETENTION_CHECKS


def test_memory_url_opens_a_memory_store() -> None:
    store = open_store("memory://")
    assert isinstance(store, MemoryStore)
    assert isinstance(store, SessionStore)
    assert store.url == "memory://"


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///state/bridge.db", "state/bridge.db"),
        ("sqlite:////var/lib/bridge/bridge.db", "/var/lib/bridge/bridge.db"),
        ("sqlite:///my%20state.db", "my state.db"),
    ],
)
def test_sqlite_url_names_a_relative_or_absolute_file(url: str, path: str) -> None:
    store = open_store(url)
    assert isinstance(store, SQLiteStore)
    assert Path(store.path) == Path(path)
    assert store.url == url


@pytest.mark.parametrize(
    "url",
    [
        "redis://localhost:6379/0",
        "rediss://cache.example:6380/2",
        "unix:///run/redis/redis.sock",
        "redis+unix:///run/redis/redis.sock",
        "REDIS://localhost",
    ],
)
def test_redis_urls_open_a_redis_store_with_the_default_prefix(url: str) -> None:
    store = open_store(url)
    assert isinstance(store, RedisStore)
    assert store.prefix == "bridge:"
    assert store.url == url


def test_redis_url_prefix_parameter_sets_the_key_prefix() -> None:
    store = open_store("redis://localhost:6379/0?prefix=team-a:")
    assert isinstance(store, RedisStore)
    assert store.prefix == "team-a:"


@pytest.mark.parametrize(
    ("url", "schema", "pool_size"),
    [
        ("postgresql://bridge:pw@db.internal:5432/bridge", "bridge", 10),
        ("postgres://localhost/bridge?schema=team_a&sslmode=require&pool_size=3", "team_a", 3),
        ("POSTGRESQL://localhost", "bridge", 10),
    ],
)
def test_postgres_urls_open_a_postgres_store_in_the_named_schema(
    url: str, schema: str, pool_size: int
) -> None:
    store = open_store(url)
    assert isinstance(store, PostgresStore)
    assert isinstance(store, SessionStore)
    assert store.schema == schema
    assert store.pool_size == pool_size
    assert store.url == url


@pytest.mark.parametrize(
    "query", ["schema=Team", "schema=a-b", "schema=x;drop", "schema=1abc", "schema=", "pool_size=0"]
)
def test_postgres_url_parameters_must_be_plain(query: str) -> None:
    with pytest.raises(ConfigError) as caught:
        open_store(f"postgresql://localhost/db?{query}")
    assert caught.value.key == "store.url"


@pytest.mark.parametrize(
    "url", ["mysql://localhost/bridge", "bridge.db", "file:///tmp/x.db", "sqlite://"]
)
def test_unknown_or_incomplete_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        open_store(url)
    assert caught.value.key == "store.url"


async def test_store_config_passes_its_retentions_to_the_store(tmp_path: Path) -> None:
    config = StoreConfig(
        url=f"sqlite:///{tmp_path / 'state.db'}",
        thread_retention=RETENTION,
        answer_retention=RETENTION,
    )
    async with AsyncExitStack() as stack:
        store = config.open()
        await store.open()
        stack.push_async_callback(store.close)
        for check in RETENTION_CHECKS:
            await check(store)


def test_store_config_refuses_a_retention_that_is_not_positive() -> None:
    with pytest.raises(ValidationError):
        StoreConfig(thread_retention=0)
    with pytest.raises(ValidationError):
        StoreConfig(answer_retention=-1)
