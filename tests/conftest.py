"""Fixtures shared by the whole test suite."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator

import pytest

from bridge.testing import (
    POSTGRES_INSTALL_HINT,
    REDIS_INSTALL_HINT,
    blocking_postgres_server,
    blocking_redis_server,
    postgres_bin_dir,
)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A `unix://` URL of a real redis-server started for this test session.

    Fails (never skips) when the binary is missing: CI installs it.
    """
    if shutil.which("redis-server") is None:
        pytest.fail(REDIS_INSTALL_HINT, pytrace=False)
    with blocking_redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A `postgresql://` URL of a real PostgreSQL server started for this test session
    (each test picks its own `?schema=`). Fails (never skips) when the binaries are
    missing: CI installs them."""
    if postgres_bin_dir() is None:
        pytest.fail(POSTGRES_INSTALL_HINT, pytrace=False)
    with blocking_postgres_server() as url:
        yield url


# -- no secret in any log line of the bridge, in every test ----------------------------

#: Secrets the suite's scenarios use: the emulator keys, the fakes' tokens, handle secrets.
KNOWN_SECRETS = (
    "test-key",
    "cli-key",
    "xoxb-fake-bot-token",
    "xapp-fake-app-token",
    "fake-signing-secret",
    "TEST-TOKEN",
    "s3cret",
    "upstream-key-4f1c9e",
    "handle-secret-77aa01",
    "TEST-TOKEN-alice",
    "TEST-TOKEN-bob",
    "TEST-TOKEN-webhook",
)
_BRIDGE_LOGGERS = ("bridge", "bridge_a2a", "bridge_mcp", "bridge_slack", "bridge_telegram", "a2a")


class _SecretScan(logging.Handler):
    """Keeps every record of the bridge's own loggers that quotes a known secret."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.leaks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.split(".")[0] not in _BRIDGE_LOGGERS:
            return
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += f" {record.exc_info[1]!r}"
        for secret in KNOWN_SECRETS:
            if secret in text:
                self.leaks.append(f"{record.name}: {text[:300]}")


@pytest.fixture(autouse=True)
def no_secret_in_bridge_logs() -> Iterator[None]:
    """Every scenario of the suite runs with known secrets; none may reach a log line."""
    scan = _SecretScan()
    loggers = [logging.getLogger(name) for name in _BRIDGE_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        logger.addHandler(scan)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(scan)
            logger.setLevel(level)
    assert not scan.leaks, f"secrets in log lines: {scan.leaks[:3]}"
