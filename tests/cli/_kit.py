"""Running the real `bridge` command as a subprocess, with a clean environment."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from bridge.testing import open_emulator

ENV_KEYS = (
    "XPANDER_API_KEY",
    "BRIDGE_CONFIG",
    "SLACK_BOT_TOKEN",
    "SLACK_APP_TOKEN",
    "SLACK_SIGNING_SECRET",
    "TELEGRAM_BOT_TOKEN",
)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS and not k.startswith("BRIDGE_")}
    return {**env, **extra}


async def bridge(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    stdin: bytes | None = None,
) -> subprocess.CompletedProcess[bytes]:
    with anyio.fail_after(60):
        return await anyio.run_process(
            [sys.executable, "-m", "bridge", *args],
            env=env or clean_env(),
            cwd=cwd,
            check=False,
            input=stdin,
        )


@pytest.fixture
async def emulator() -> AsyncIterator[Any]:
    async with open_emulator(api_key="cli-key") as emu:
        yield emu


def upstream_env(emulator: Any, **extra: str) -> dict[str, str]:
    return clean_env(
        BRIDGE_UPSTREAM__BASE_URL=emulator.base_url, XPANDER_API_KEY="cli-key", **extra
    )


def one_line_error(result: subprocess.CompletedProcess[bytes]) -> str:
    """The command failed with exactly one line on stderr and no traceback; returns it."""
    err = result.stderr.decode()
    assert "Traceback" not in err and "ExceptionGroup" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


async def read_until(stream: Any, pattern: bytes, seen: bytearray) -> re.Match[bytes]:
    """Read a process's stream until `pattern` matches what was read so far."""
    with anyio.fail_after(30):
        while (found := re.search(pattern, seen)) is None:
            seen += await stream.receive()
    return found
