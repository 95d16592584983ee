"""The test kit's redis-server helper starts a private server and stops it afterwards."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from bridge.stores import RedisStore
from bridge.testing import run_redis_server


async def test_run_redis_server_serves_a_store_then_stops(tmp_path: Path) -> None:
    async with run_redis_server(tmp_path) as url:
        socket = url.removeprefix("unix://")
        assert socket.startswith(str(tmp_path))
        async with RedisStore(url) as store:
            assert await store.mark_seen("ev", 60) is True
    with pytest.raises(OSError):
        await anyio.connect_unix(socket)


async def test_run_redis_server_moves_a_too_long_socket_path_elsewhere(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    async with run_redis_server(deep) as url, RedisStore(url) as store:
        assert await store.acquire_lock("k", "a", 60) is True
        assert len(url.removeprefix("unix://")) <= 100
    assert not await anyio.Path(url.removeprefix("unix://")).exists()
