"""A real `redis-server` for tests: started on a unix socket, stopped afterwards."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from pathlib import Path

import anyio
from anyio.abc import Process
from anyio.from_thread import start_blocking_portal

__all__ = ["REDIS_INSTALL_HINT", "blocking_redis_server", "run_redis_server"]

REDIS_INSTALL_HINT = (
    "redis-server is not on PATH; the store tests need the real binary "
    "(CI installs it with `apt-get install -y redis-server`)"
)


@asynccontextmanager
async def run_redis_server(
    directory: str | os.PathLike[str], *, startup_timeout: float = 10
) -> AsyncIterator[str]:
    """Start `redis-server` on a unix socket in `directory` (no TCP port, no
    persistence), wait until it answers PING, and yield its `unix://` URL.

    Raises `FileNotFoundError` when the binary is missing and `RuntimeError`
    when it does not come up within `startup_timeout` seconds.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        raise FileNotFoundError(REDIS_INSTALL_HINT)
    with ExitStack() as stack:
        home = Path(directory)
        if len(str(home / "redis.sock")) > 100:  # sun_path holds about 104 bytes
            home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="redis-")))
        socket, log = home / "redis.sock", home / "redis.log"
        command = [binary, "--port", "0", "--unixsocket", str(socket), "--unixsocketperm", "700"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(home), "--logfile", str(log)]
        devnull = subprocess.DEVNULL
        async with await anyio.open_process(
            command, stdin=devnull, stdout=devnull, stderr=devnull
        ) as process:
            try:
                await _wait_for_ping(process, socket, log, startup_timeout)
                yield f"unix://{socket}"
            finally:
                with anyio.CancelScope(shield=True):
                    await _stop(process)


async def _wait_for_ping(process: Process, socket: Path, log: Path, within: float) -> None:
    with anyio.move_on_after(within):
        while process.returncode is None:
            try:
                async with await anyio.connect_unix(socket) as stream:
                    await stream.send(b"PING\r\n")
                    if (await stream.receive()).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            await anyio.sleep(0.02)
    log_file = anyio.Path(log)
    tail = (await log_file.read_text(errors="replace"))[-2000:] if await log_file.exists() else ""
    raise RuntimeError(f"redis-server did not answer PING within {within}s:\n{tail}")


async def _stop(process: Process) -> None:
    if process.returncode is None:
        process.terminate()
        with anyio.move_on_after(10):
            await process.wait()
    if process.returncode is None:
        process.kill()


@contextmanager
def blocking_redis_server(directory: str | os.PathLike[str]) -> Iterator[str]:
    """`run_redis_server` for synchronous callers such as session-scoped pytest
    fixtures: the server is owned by an event loop in a helper thread."""
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(run_redis_server(directory)) as url,
    ):
        yield url
