"""Fixtures: a fast emulator on 127.0.0.1:0 and a raw httpx client pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from bridge.emulator import Emulator
from bridge.testing import open_emulator

FAST: dict[str, Any] = {"keepalive_interval": 0.05, "slow_silence": 0.3, "login_timeout": 0.3}


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with open_emulator(**FAST) as emulator:
        yield emulator


@pytest.fixture
async def client(emu: Emulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=emu.base_url, headers={"x-api-key": emu.api_key}, timeout=5
    ) as http:
        yield http
