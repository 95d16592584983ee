"""A real PostgreSQL server for tests: `initdb` in a temporary directory, `postgres` on a
free loopback port, stopped and removed afterwards."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from glob import glob
from pathlib import Path
from typing import Any

import anyio
import asyncpg
from anyio.abc import Process
from anyio.from_thread import start_blocking_portal

__all__ = [
    "POSTGRES_INSTALL_HINT",
    "blocking_postgres_server",
    "postgres_bin_dir",
    "run_postgres_server",
]

POSTGRES_INSTALL_HINT = (
    "initdb/postgres were found neither on PATH nor in /usr/lib/postgresql/*/bin; the "
    "Postgres store tests need the real server (CI installs it with "
    "`apt-get install -y postgresql`)"
)
_USER = "bridge"
_UNPRIVILEGED = "postgres"
"""The account the server runs as when the tests run as root (initdb refuses root)."""


def postgres_bin_dir() -> Path | None:
    """Where `initdb` and `postgres` live: PATH first, else the newest Debian version dir."""
    found = shutil.which("initdb")
    if found is not None:
        return Path(found).parent
    candidates = [Path(path) for path in glob("/usr/lib/postgresql/*/bin")]
    candidates = [path for path in candidates if (path / "initdb").exists()]

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in path.parent.name.split(".") if part.isdigit())

    return max(candidates, key=version, default=None)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _account() -> dict[str, Any]:
    """Process options that drop root to the unprivileged account; nothing otherwise."""
    if os.geteuid() != 0:
        return {}
    try:
        entry = pwd.getpwnam(_UNPRIVILEGED)
    except KeyError:
        raise RuntimeError(
            f"running as root, and there is no {_UNPRIVILEGED!r} account to run "
            "PostgreSQL as (the Debian package `postgresql` creates it)"
        ) from None
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


@asynccontextmanager
async def run_postgres_server(*, startup_timeout: float = 30) -> AsyncIterator[str]:
    """Create a cluster in a temporary directory, start it on a free 127.0.0.1 port
    (trust authentication, no fsync), wait until it accepts a connection, and yield
    its `postgresql://` URL. Stopped and deleted on exit.

    Raises `FileNotFoundError` when the binaries are missing and `RuntimeError` when
    the server does not come up within `startup_timeout` seconds.
    """
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise FileNotFoundError(POSTGRES_INSTALL_HINT)
    account = _account()
    home = Path(tempfile.mkdtemp(prefix="bridge-pg-"))
    try:
        if account:
            os.chown(home, account["user"], account["group"])
        data = home / "data"
        await _initdb(bin_dir, data, account)
        port = _free_port()
        command = [str(bin_dir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(home)]
        command += ["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]
        command += ["-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        command += ["-c", "max_connections=400", "-c", "logging_collector=off"]
        log = home / "server.log"
        with log.open("wb") as log_file:
            if account:
                os.chown(log, account["user"], account["group"])
            async with await anyio.open_process(
                command, stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file, **account
            ) as process:
                try:
                    url = f"postgresql://{_USER}@127.0.0.1:{port}/postgres"
                    await _wait_until_ready(process, url, log, startup_timeout)
                    yield url
                finally:
                    with anyio.CancelScope(shield=True):
                        await _stop(process)
    finally:
        shutil.rmtree(home, ignore_errors=True)


async def _initdb(bin_dir: Path, data: Path, account: dict[str, Any]) -> None:
    command = [str(bin_dir / "initdb"), "-D", str(data), "-U", _USER, "--auth=trust"]
    command += ["--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions"]
    result = await anyio.run_process(command, check=False, **account)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).decode(errors="replace")[-2000:]
        raise RuntimeError(f"initdb failed with exit code {result.returncode}:\n{output}")


async def _wait_until_ready(process: Process, url: str, log: Path, within: float) -> None:
    with anyio.move_on_after(within):
        while process.returncode is None:
            try:
                conn = await asyncpg.connect(url, timeout=2)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                await anyio.sleep(0.05)
                continue
            await conn.close()
            return
    log_file = anyio.Path(log)
    tail = (await log_file.read_text(errors="replace"))[-2000:] if await log_file.exists() else ""
    raise RuntimeError(f"postgres did not accept connections within {within}s:\n{tail}")


async def _stop(process: Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGINT)  # PostgreSQL's "fast" shutdown
        with anyio.move_on_after(15):
            await process.wait()
    if process.returncode is None:
        process.kill()
        await process.wait()


@contextmanager
def blocking_postgres_server() -> Iterator[str]:
    """`run_postgres_server` for synchronous callers such as session-scoped pytest
    fixtures: the server is owned by an event loop in a helper thread."""
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(run_postgres_server()) as url,
    ):
        yield url
