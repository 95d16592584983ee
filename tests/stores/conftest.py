"""A store of each kind, opened and empty, for the conformance suite."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bridge.stores import SessionStore, open_store

STORE_KINDS = ["memory", "sqlite", "redis", "postgres"]
SHARED_KINDS = ["sqlite", "redis", "postgres"]


@pytest.fixture
def unique_prefix() -> str:
    """A Redis key prefix no other test uses, so tests share one server safely."""
    return f"test-{uuid.uuid4().hex}:"


@pytest.fixture(params=STORE_KINDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path, unique_prefix: str) -> str:
    return _url(request, tmp_path, unique_prefix)


@pytest.fixture(params=SHARED_KINDS)
def shared_store_url(request: pytest.FixtureRequest, tmp_path: Path, unique_prefix: str) -> str:
    """A store several processes can open at once."""
    return _url(request, tmp_path, unique_prefix)


def _url(request: pytest.FixtureRequest, tmp_path: Path, unique_prefix: str) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state' / 'bridge.db'}"
    if request.param == "postgres":
        postgres_url: str = request.getfixturevalue("postgres_url")
        return f"{postgres_url}?schema={unique_schema()}&pool_size=2"
    redis_url: str = request.getfixturevalue("redis_url")
    return f"{redis_url}?prefix={unique_prefix}"


def unique_schema() -> str:
    """A Postgres schema no other test uses, so tests share one server safely."""
    return f"test_{uuid.uuid4().hex}"


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[SessionStore]:
    opened = open_store(store_url)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()
