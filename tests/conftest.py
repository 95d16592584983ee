"""Fixtures shared by the whole test suite."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from bridge.testing._stores import REDIS_INSTALL_HINT, blocking_redis_server


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A `unix://` URL of a real redis-server started for this test session.

    Fails (never skips) when the binary is missing: CI installs it.
    """
    if shutil.which("redis-server") is None:
        pytest.fail(REDIS_INSTALL_HINT, pytrace=False)
    with blocking_redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url
