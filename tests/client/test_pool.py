"""The client's connection pool: same decisions as httpcore's, in linear time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import anyio
import anyio.abc
import httpx
import pytest

from bridge.client import AgentClient
from bridge.events import TaskFinished
from bridge.testing import LinearPool, use_linear_pool

_RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok"


@asynccontextmanager
async def http_server(
    *, answers_per_connection: int, response: bytes = _RESPONSE
) -> AsyncIterator[tuple[str, list[anyio.Event]]]:
    """A raw HTTP/1.1 server on 127.0.0.1:0 that answers `answers_per_connection`
    requests on each connection, then hangs up; yields its URL and, per connection
    accepted, an event set once it has hung up."""
    hung_up: list[anyio.Event] = []

    async def serve(stream: anyio.abc.SocketStream) -> None:
        done = anyio.Event()
        hung_up.append(done)
        async with stream:
            buffer = b""
            with suppress(anyio.EndOfStream, anyio.BrokenResourceError):  # the client hung up
                for _ in range(answers_per_connection):
                    while b"\r\n\r\n" not in buffer:
                        buffer += await stream.receive()
                    buffer = buffer.split(b"\r\n\r\n", 1)[1]
                    await stream.send(response)
        done.set()

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as group:
        group.start_soon(listener.serve, serve)
        yield f"http://127.0.0.1:{port}", hung_up
        group.cancel_scope.cancel()


@asynccontextmanager
async def pooled_client(
    limits: httpx.Limits | None = None, *, answers_per_connection: int, response: bytes = _RESPONSE
) -> AsyncIterator[tuple[httpx.AsyncClient, str, list[anyio.Event]]]:
    """An httpx client with the linear pool, and the server above: (client, URL, hang-ups)."""
    async with (
        http_server(answers_per_connection=answers_per_connection, response=response) as (
            url,
            hung_up,
        ),
        httpx.AsyncClient(limits=limits or httpx.Limits()) as http,
    ):
        use_linear_pool(http)
        yield http, url, hung_up


async def get_ok(http: httpx.AsyncClient, url: str, times: int) -> None:
    with anyio.fail_after(10):
        for _ in range(times):
            assert (await http.get(url)).text == "ok"


def pool_of(http: httpx.AsyncClient) -> Any:
    return http._transport._pool  # type: ignore[attr-defined]


async def test_the_agent_client_pool_is_the_linear_one(client: AgentClient) -> None:
    assert type(pool_of(client._http)) is LinearPool


async def test_concurrent_streams_get_one_connection_each_and_reuse_them_afterwards(
    emulator: Any, client: AgentClient
) -> None:
    echo = next(agent.id for agent in await client.list_agents() if agent.name == "echo")
    finished: list[str] = []

    async def one(index: int) -> None:
        async with client.stream(echo, f"hello {index}") as run:
            async for event in run:
                if isinstance(event, TaskFinished):
                    finished.append(event.task.result or "")

    with anyio.fail_after(20):
        for _ in range(2):
            async with anyio.create_task_group() as group:
                for index in range(20):
                    group.start_soon(one, index)
    assert sorted(finished) == sorted([f"hello {index}" for index in range(20)] * 2)
    connections = pool_of(client._http).connections
    assert 1 <= len(connections) <= 21  # the second round reused the first one's
    assert all(connection.is_idle() for connection in connections)


@pytest.mark.parametrize("sweep_seconds", [0.0, 3600.0], ids=["sweep", "probe-before-reuse"])
async def test_an_idle_connection_the_server_hung_up_is_not_reused(
    monkeypatch: pytest.MonkeyPatch, sweep_seconds: float
) -> None:
    monkeypatch.setattr(LinearPool, "SWEEP_SECONDS", sweep_seconds)
    async with pooled_client(answers_per_connection=1) as (http, url, hung_up):
        with anyio.fail_after(10):
            for _ in range(3):
                response = await http.get(url)
                assert response.text == "ok"
                await hung_up[-1].wait()
        assert len(hung_up) == 3


async def test_idle_connections_past_their_keepalive_expiry_are_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(LinearPool, "SWEEP_SECONDS", 0.0)
    limits = httpx.Limits(keepalive_expiry=0.0)
    async with pooled_client(limits, answers_per_connection=10) as (http, url, hung_up):
        await get_ok(http, url, 3)
        # Each request found the previous connection expired: closed, and a new one opened.
        assert len(hung_up) == 3
        assert pool_of(http).connections == []


async def test_requests_beyond_max_connections_wait_for_a_free_one() -> None:
    limits = httpx.Limits(max_connections=2)
    async with pooled_client(limits, answers_per_connection=100) as (http, url, hung_up):
        answers: list[str] = []

        async def get() -> None:
            answers.append((await http.get(url)).text)

        with anyio.fail_after(10):
            async with anyio.create_task_group() as group:
                for _ in range(8):
                    group.start_soon(get)
        assert answers == ["ok"] * 8
        assert len(hung_up) == 2


async def test_a_full_pool_clears_a_closed_connection_for_the_next_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(LinearPool, "SWEEP_SECONDS", 3600.0)  # only a full pool sweeps
    closing = _RESPONSE.replace(b"\r\n\r\n", b"\r\nconnection: close\r\n\r\n", 1)
    limits = httpx.Limits(max_connections=1)
    async with pooled_client(limits, answers_per_connection=1, response=closing) as (
        http,
        url,
        hung_up,
    ):
        await get_ok(http, url, 3)
        assert len(hung_up) == 3
