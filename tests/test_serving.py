"""`bridge.serving`: ready once entered, the host's signal handlers left alone, and open
requests cut off after the configured graceful shutdown."""

from __future__ import annotations

import signal
import socket
from typing import Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from bridge.serving import serving_asgi

pytestmark = pytest.mark.anyio


def _listening() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    return sock


def _app(streaming: anyio.Event) -> Starlette:
    async def hello(request: Request) -> Response:
        return Response("hello")

    async def forever(request: Request) -> StreamingResponse:
        async def body() -> Any:
            yield b"first\n"
            streaming.set()
            await anyio.sleep_forever()

        return StreamingResponse(body())

    return Starlette(routes=[Route("/", hello), Route("/forever", forever)])


async def test_the_server_answers_as_soon_as_the_block_is_entered() -> None:
    before = signal.getsignal(signal.SIGINT)
    with _listening() as sock:
        async with serving_asgi(_app(anyio.Event()), sock, shutdown_timeout=0) as server:
            assert server.ready.is_set()
            assert signal.getsignal(signal.SIGINT) is before
            port = sock.getsockname()[1]
            async with httpx.AsyncClient() as http:
                answered = await http.get(f"http://127.0.0.1:{port}/")
        assert server.exited.is_set()
    assert answered.text == "hello"


async def test_an_open_request_is_cut_off_after_the_configured_grace() -> None:
    streaming = anyio.Event()
    lines: list[str] = []
    with _listening() as sock:
        port = sock.getsockname()[1]
        async with httpx.AsyncClient(timeout=30) as http, anyio.create_task_group() as group:

            async def read() -> None:
                try:
                    async with http.stream("GET", f"http://127.0.0.1:{port}/forever") as response:
                        async for line in response.aiter_lines():
                            lines.append(line)
                except httpx.HTTPError as exc:
                    lines.append(type(exc).__name__)

            with anyio.fail_after(10):
                async with serving_asgi(_app(streaming), sock, shutdown_timeout=0.1):
                    group.start_soon(read)
                    await streaming.wait()
    assert lines[0] == "first"
    assert len(lines) == 2  # the stream ended (closed or cut) once the server stopped
