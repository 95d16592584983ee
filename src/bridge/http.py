"""The bridge's one HTTP server: a Starlette app adapters mount routes on, served by uvicorn.

Binds to 127.0.0.1 unless configured otherwise; `/healthz` answers while the process lives.
Every request passes the edge guards of `[http]` (body size, read timeouts, connection cap).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import anyio
import anyio.abc
import anyio.lowlevel
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp

from bridge._edge import (
    BodyLimit,
    guarded_protocol,
    header_matches,
    rate_limited_logs,
    webhook_endpoint,
)
from bridge.config import HttpConfig
from bridge.errors import StartupError
from bridge.serving import serving_asgi

__all__ = ["HttpApp", "header_matches"]

logger = logging.getLogger(__name__)

Endpoint = Callable[[Request], Awaitable[Response]]
T = TypeVar("T")


class HttpApp:
    """Routes collected from the core and the adapters, served on one port."""

    def __init__(self, config: HttpConfig | None = None) -> None:
        self.config = config or HttpConfig()
        self._routes: list[BaseRoute] = [Route("/healthz", self._healthz, methods=["GET"])]
        self._body_limits: dict[str, int] = {}
        self.port: int | None = None
        self.host: str | None = None
        self.listening = anyio.Event()
        """Set once the server accepts connections (adapters start before it)."""

    async def _healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    def add_route(
        self,
        path: str,
        endpoint: Endpoint,
        methods: Sequence[str] = ("GET",),
        *,
        max_body: int | None = None,
    ) -> None:
        """Route `path`; `max_body` bytes of request body (default `[http] max_body_bytes`)."""
        self._routes.append(Route(path, endpoint, methods=list(methods)))
        if max_body is not None:
            self._body_limits[path] = max_body

    def add_webhook(
        self,
        path: str,
        handle: Callable[[Request, T], Awaitable[Response]],
        *,
        verify: Callable[[Request, bytes], bool],
        parse: Callable[[Request, bytes], T | None],
        refused: int = 401,
        max_body: int | None = None,
    ) -> None:
        """Route POSTs of a platform's deliveries to `path`: each body (at most `max_body`
        bytes) is authenticated by `verify` (else answered `refused`), then `parse`d (a body
        it cannot read is answered 400), then `handle`d with what `parse` returned."""
        endpoint = webhook_endpoint(handle, verify=verify, parse=parse, refused=refused)
        self.add_route(path, endpoint, ["POST"], max_body=max_body)

    def mount(self, path: str, app: ASGIApp) -> None:
        self._routes.append(Mount(path, app=app))

    def asgi(self) -> Starlette:
        limits = Middleware(
            BodyLimit,
            default=self.config.max_body_bytes,
            limits=dict(self._body_limits),
            timeout=self.config.body_timeout,
        )
        return Starlette(routes=list(self._routes), middleware=[limits])

    def _refused(self) -> None:
        logger.warning(
            "refused a connection: %d open (http.max_connections)", self.config.max_connections
        )

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
        edge = self.config
        protocol = guarded_protocol(
            header_timeout=edge.header_timeout,
            max_connections=edge.max_connections,
            on_refused=self._refused,
        )
        try:
            with rate_limited_logs(edge.log_interval):
                async with serving_asgi(
                    self.asgi(),
                    sock,
                    shutdown_timeout=edge.shutdown_timeout,
                    http=protocol,
                    timeout_keep_alive=edge.keep_alive_timeout,
                    **uvicorn_options,
                ) as server:
                    logger.info("HTTP server listening on %s", self.base_url)
                    self.listening.set()
                    task_status.started(self.port)
                    await server.exited.wait()
                raise StartupError(f"the HTTP server on {host}:{port} stopped", key="http.port")
        finally:
            sock.close()
