"""`open_emulator()`: the platform emulator on a real socket at 127.0.0.1:<free port>, for
the embedded upstream and for tests (`bridge.testing` exports it too).

It runs inside the caller's event loop, so tests can inspect and drive its state
(`emu.requests`, `emu.tasks`, `emu.inject(...)`, `emu.resume(...)`) directly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from bridge.emulator._emulator import Emulator
from bridge.emulator._server import serving

__all__ = ["open_emulator"]


@asynccontextmanager
async def open_emulator(
    *, api_key: str = "test-key", **emulator_options: Any
) -> AsyncIterator[Emulator]:
    """Serve a fresh `Emulator` until the block exits, and yield it.

    `emu.base_url` is `http://127.0.0.1:<port>`; send `x-api-key: emu.api_key`.
    `emulator_options` go to `Emulator` (`slow_silence=`, `keepalive_interval=`,
    `login_timeout=`, `extra_agents=`, `seed=`, ...). On exit every running turn and
    stream is ended and the server shut down.
    """
    emulator = Emulator(api_key=api_key, **emulator_options)
    async with serving(emulator):
        yield emulator
