"""Serving an emulator with uvicorn inside the current anyio event loop.

uvicorn runs in a shielded task so that cancelling the host still lets it shut down
gracefully: the emulator first ends every turn and stream, then uvicorn closes its sockets.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import uvicorn

from bridge.emulator._emulator import Emulator

__all__ = ["serve", "serving"]

logger = logging.getLogger(__name__)

_ABORT_MESSAGE = "ASGI callable returned without completing response."


class _ExpectedAbortFilter(logging.Filter):
    """Silence uvicorn's complaint about connections the emulator cuts on purpose."""

    def __init__(self, emulator: Emulator) -> None:
        super().__init__()
        self.emulator = emulator

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == _ABORT_MESSAGE and self.emulator.expected_aborts > 0:
            self.emulator.expected_aborts -= 1
            return False
        return True


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, emulator: Emulator) -> None:
        super().__init__(config)
        self.emulator = emulator
        self.ready = anyio.Event()
        self.exited = anyio.Event()
        self._exit_requested = anyio.Event()

    def request_exit(self) -> None:
        self.should_exit = True
        self._exit_requested.set()

    async def main_loop(self) -> None:
        # uvicorn's loop, but woken at once by `request_exit` instead of polling every 0.1 s:
        # tests open and close many emulators.
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            with anyio.move_on_after(0.1):
                await self._exit_requested.wait()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # End streams and sync waits first; uvicorn otherwise waits for them to finish.
        self.emulator.close()
        await super().shutdown(sockets)


def _config(emulator: Emulator, **options: Any) -> uvicorn.Config:
    return uvicorn.Config(
        emulator.app,
        lifespan="off",
        log_level="warning",
        log_config=None,
        access_log=False,
        http="h11",
        timeout_graceful_shutdown=5,
        **options,
    )


@asynccontextmanager
async def serving(
    emulator: Emulator, *, host: str = "127.0.0.1", port: int = 0, sock: socket.socket | None = None
) -> AsyncIterator[Emulator]:
    """Serve `emulator` until the block exits; `emulator.base_url` is set inside it.

    Pass `sock` to serve on an already bound listening socket (port 0 for tests).
    """
    config = _config(emulator, host=host, port=port)
    server = _Server(config, emulator)
    uvicorn_error = logging.getLogger("uvicorn.error")
    abort_filter = _ExpectedAbortFilter(emulator)
    uvicorn_error.addFilter(abort_filter)
    try:
        async with emulator.running(), anyio.create_task_group() as tg:

            async def run_server() -> None:
                with anyio.CancelScope(shield=True):
                    try:
                        await server.serve(sockets=[sock] if sock is not None else None)
                    finally:
                        server.exited.set()

            tg.start_soon(run_server)
            with anyio.fail_after(10):
                await _first(server.ready, server.exited)
            if not server.ready.is_set():
                raise RuntimeError("the emulator's HTTP server failed to start")
            listener = sock if sock is not None else server.servers[0].sockets[0]
            bound_host, bound_port = listener.getsockname()[:2]
            emulator._base_url = f"http://{_url_host(bound_host)}:{bound_port}"
            logger.debug("emulator listening on %s", emulator._base_url)
            try:
                yield emulator
            finally:
                server.request_exit()
                emulator._base_url = None
    finally:
        uvicorn_error.removeFilter(abort_filter)
        if sock is not None:
            sock.close()


async def _first(*events: anyio.Event) -> None:
    async with anyio.create_task_group() as tg:
        for event in events:

            async def wait(event: anyio.Event = event) -> None:
                await event.wait()
                tg.cancel_scope.cancel()

            tg.start_soon(wait)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


async def serve(host: str, port: int, api_key: str | None, **options: Any) -> None:
    """Run a standalone emulator until cancelled or interrupted (the `bridge emulator` command).

    `api_key=None` accepts any non-empty key. `options` go to `Emulator` (e.g.
    `slow_silence`, `keepalive_interval`, `extra_agents`).
    """
    emulator = Emulator(api_key=api_key, **options)
    async with serving(emulator, host=host, port=port):
        logger.info("emulator listening on %s", emulator.base_url)
        logger.info(
            "emulated agents: %s", ", ".join(f"{s.name}={s.id}" for s in emulator.listed_agents())
        )
        await _wait_exited(emulator)


async def _wait_exited(emulator: Emulator) -> None:
    # uvicorn exits on SIGINT/SIGTERM by itself; the closing event fires when it shuts down.
    await emulator.closing.wait()
