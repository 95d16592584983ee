"""A fresh namespace on the session's Redis server or PostgreSQL server, for replicas."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture(params=["redis", "postgres"])
def shared_store(request: pytest.FixtureRequest) -> str:
    """The store URL two replicas share: its own Redis key prefix or Postgres schema."""
    if request.param == "redis":
        redis_url: str = request.getfixturevalue("redis_url")
        return f"{redis_url}?prefix=replicas-{uuid.uuid4().hex}:"
    postgres_url: str = request.getfixturevalue("postgres_url")
    return f"{postgres_url}?schema=replicas_{uuid.uuid4().hex}"
