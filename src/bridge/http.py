"""The bridge's one HTTP server: a Starlette app adapters mount routes on, served by uvicorn.

Binds to 127.0.0.1 unless configured otherwise; `/healthz` answers while the process lives.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp

from bridge.errors import StartupError

__all__ = ["HttpApp"]

logger = logging.getLogger(__name__)

Endpoint = Callable[[Request], Awaitable[Response]]


class HttpApp:
    """Routes collected from the core and the adapters, served on one port."""

    def __init__(self) -> None:
        self._routes: list[BaseRoute] = [Route("/healthz", self._healthz, methods=["GET"])]
        self.checks: dict[str, Callable[[], Awaitable[bool]]] = {}
        self.port: int | None = None
        self.host: str | None = None
        self.listening = anyio.Event()
        """Set once the server accepts connections (adapters start before it)."""

    async def _healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    def add_route(self, path: str, endpoint: Endpoint, methods: Sequence[str] = ("GET",)) -> None:
        self._routes.append(Route(path, endpoint, methods=list(methods)))

    def mount(self, path: str, app: ASGIApp) -> None:
        self._routes.append(Mount(path, app=app))

    def asgi(self) -> Starlette:
        return Starlette(routes=list(self._routes))

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("the HTTP server is not started")
        host = self.host if self.host not in (None, "0.0.0.0", "::") else "127.0.0.1"
        return f"http://{host}:{self.port}"

    async def serve(
        self,
        host: str,
        port: int,
        *,
        task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
        **uvicorn_options: Any,
    ) -> None:
        """Serve until cancelled; `task_status.started(port)` once listening (port 0 = any)."""
        await anyio.lowlevel.checkpoint()  # shutting down already: do not start a server
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted connections only then,
        # and without it keep-alive responses can stall ~40 ms (Nagle + delayed ACK).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            raise StartupError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}", key="http.port"
            ) from None
        sock.set_inheritable(True)
        self.host, self.port = host, sock.getsockname()[1]
        config = uvicorn.Config(
            self.asgi(),
            log_level="warning",
            lifespan="off",
            access_log=False,
            timeout_graceful_shutdown=5,
            **uvicorn_options,
        )
        server = uvicorn.Server(config)
        done = anyio.Event()

        async def run() -> None:
            # `_serve` rather than `serve`: the bridge owns SIGINT/SIGTERM, uvicorn must not
            # replace the handlers; shielded so that shutdown is uvicorn's graceful one.
            with anyio.CancelScope(shield=True):
                try:
                    await server._serve([sock])
                finally:
                    done.set()

        try:
            async with anyio.create_task_group() as group:
                group.start_soon(run)
                while not server.started:
                    if done.is_set():
                        raise OSError(f"HTTP server failed to start on {host}:{port}")
                    await anyio.sleep(0.01)
                logger.info("HTTP server listening on %s", self.base_url)
                self.listening.set()
                task_status.started(self.port)
                try:
                    await anyio.sleep_forever()
                finally:
                    server.should_exit = True
                    with anyio.CancelScope(shield=True), anyio.move_on_after(10):
                        await done.wait()
        finally:
            sock.close()
