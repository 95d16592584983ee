"""One way to serve an ASGI app with uvicorn inside the current anyio event loop, for the
bridge's HTTP server, the platform emulator and test fakes: a ready event instead of
polling, a configurable graceful shutdown, and the host's signal handlers left alone."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import anyio
import uvicorn

from bridge.errors import StartupError

__all__ = ["AsgiServer", "serving_asgi"]


class AsgiServer(uvicorn.Server):
    """uvicorn's server with events: `ready` once it accepts connections, `exited` once it
    has stopped; `request_exit()` wakes its loop at once instead of at the next 0.1 s tick."""

    def __init__(
        self,
        config: uvicorn.Config,
        *,
        before_shutdown: Callable[[], None] | None = None,
        signals: bool = False,
    ) -> None:
        super().__init__(config)
        self.signals = signals
        self.ready = anyio.Event()
        self.exited = anyio.Event()
        self._exit_requested = anyio.Event()
        self._before_shutdown = before_shutdown

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        # Unless asked to (a standalone server), uvicorn leaves SIGINT/SIGTERM to the host
        # (the bridge drains on them): it neither replaces the handlers nor re-raises them.
        if self.signals:
            with super().capture_signals():
                yield
        else:
            yield

    def request_exit(self) -> None:
        self.should_exit = True
        self._exit_requested.set()

    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864_000
            with anyio.move_on_after(0.1):
                await self._exit_requested.wait()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.ready.set()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self._before_shutdown is not None:
            self._before_shutdown()  # end long-lived streams first: they would use the grace
        await super().shutdown(sockets)


@asynccontextmanager
async def serving_asgi(
    app: Any,
    sock: socket.socket,
    *,
    shutdown_timeout: float = 5.0,
    before_shutdown: Callable[[], None] | None = None,
    signals: bool = False,
    **uvicorn_options: Any,
) -> AsyncIterator[AsgiServer]:
    """Serve `app` on the bound, listening `sock` until the block exits (or the server
    exits: `server.exited`), then shut down gracefully: open requests get
    `shutdown_timeout` seconds to finish. `signals=True` lets uvicorn exit on SIGINT/SIGTERM.

    Raises:
        StartupError: the server did not start.
    """
    options: dict[str, Any] = {
        "lifespan": "off",
        "log_level": "warning",
        "log_config": None,  # uvicorn's records go through the host's handlers
        "access_log": False,
        "http": "h11",
        **uvicorn_options,
    }
    # uvicorn types it int; it is used as a float timeout
    config = uvicorn.Config(app, timeout_graceful_shutdown=shutdown_timeout, **options)  # type: ignore[arg-type]
    server = AsgiServer(config, before_shutdown=before_shutdown, signals=signals)
    async with anyio.create_task_group() as group:

        async def run() -> None:
            # Shielded: cancelling the host still lets uvicorn shut down gracefully.
            with anyio.CancelScope(shield=True):
                try:
                    await server.serve(sockets=[sock])
                except SystemExit:  # uvicorn's way of saying it could not start
                    pass
                finally:
                    server.exited.set()

        group.start_soon(run)
        await _first(server.ready, server.exited)
        if not server.ready.is_set():
            raise StartupError(f"the HTTP server did not start on {_address(sock)}")
        try:
            yield server
        finally:
            server.request_exit()
            with anyio.CancelScope(shield=True):
                await server.exited.wait()


async def _first(*events: anyio.Event) -> None:
    async with anyio.create_task_group() as group:
        for event in events:

            async def wait(event: anyio.Event = event) -> None:
                await event.wait()
                group.cancel_scope.cancel()

            group.start_soon(wait)


def _address(sock: socket.socket) -> str:
    try:
        host, port = sock.getsockname()[:2]
    except OSError:
        return "a closed socket"
    return f"{host}:{port}"
