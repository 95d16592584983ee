"""Serving an emulator inside the current anyio event loop (`bridge.serving`): on the way
out the emulator first ends every turn and stream, then uvicorn closes its sockets.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from bridge.emulator._emulator import Emulator
from bridge.serving import serving_asgi

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


@asynccontextmanager
async def serving(
    emulator: Emulator,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    sock: socket.socket | None = None,
    shutdown_timeout: float = 5.0,
    signals: bool = False,
) -> AsyncIterator[Emulator]:
    """Serve `emulator` until the block exits; `emulator.base_url` is set inside it.

    Pass `sock` to serve on an already bound listening socket (port 0 for tests).
    `signals=True` (a standalone emulator) ends it on SIGINT/SIGTERM.
    """
    if sock is None:
        sock = _listen(host, port)
    uvicorn_error = logging.getLogger("uvicorn.error")
    abort_filter = _ExpectedAbortFilter(emulator)
    uvicorn_error.addFilter(abort_filter)
    try:
        async with (
            emulator.running(),
            serving_asgi(
                emulator.app,
                sock,
                shutdown_timeout=shutdown_timeout,
                # End streams and sync waits first; uvicorn otherwise waits for them.
                before_shutdown=emulator.close,
                signals=signals,
            ),
        ):
            bound_host, bound_port = sock.getsockname()[:2]
            emulator._base_url = f"http://{_url_host(bound_host)}:{bound_port}"
            logger.debug("emulator listening on %s", emulator._base_url)
            try:
                yield emulator
            finally:
                emulator._base_url = None
    finally:
        uvicorn_error.removeFilter(abort_filter)
        sock.close()


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


async def serve(host: str, port: int, api_key: str | None, **options: Any) -> None:
    """Run a standalone emulator until cancelled or interrupted (the `bridge emulator` command).

    `api_key=None` accepts any non-empty key. `options` go to `Emulator` (e.g.
    `slow_silence`, `keepalive_interval`, `extra_agents`).
    """
    emulator = Emulator(api_key=api_key, **options)
    async with serving(emulator, host=host, port=port, signals=True):
        logger.info("emulator listening on %s", emulator.base_url)
        logger.info(
            "emulated agents: %s", ", ".join(f"{s.name}={s.id}" for s in emulator.listed_agents())
        )
        await _wait_exited(emulator)


async def _wait_exited(emulator: Emulator) -> None:
    # uvicorn exits on SIGINT/SIGTERM by itself; the closing event fires when it shuts down.
    await emulator.closing.wait()
