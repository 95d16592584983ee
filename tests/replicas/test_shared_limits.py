"""Per-user limits are the store's, not a replica's: one Telegram user flooding two
replicas of one store reaches upstream with one bucket's worth, and is told once."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import anyio
import httpx
import pytest
from bridge_telegram import WEBHOOK_PATH
from bridge_telegram.testing import FakeUser, open_fake_bot_api

from bridge.testing import open_emulator
from tests.chaos._kit import bridge_settings, running, telegram_adapter

LIMIT = 3
FLOOD = 24
SECRET = "limits-webhook-secret"
USER = FakeUser(7301, "Flo")


class _Dropped(logging.Handler):
    """Counts the updates the gate dropped; wakes the test when all of them were."""

    def __init__(self, expected: int) -> None:
        super().__init__()
        self.count, self.expected, self.done = 0, expected, anyio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "over the rate limit" in record.getMessage():
            self.count += 1
            if self.count >= self.expected:
                self.done.set()


@pytest.fixture
def dropped() -> Iterator[_Dropped]:
    handler = _Dropped(FLOOD - LIMIT)
    # Wherever the surface's flow logs from: the bridge's and the adapter's loggers.
    loggers = [logging.getLogger(name) for name in ("bridge", "bridge_telegram")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)


async def test_a_flood_across_two_replicas_reaches_upstream_with_one_bucket(
    shared_store: str, dropped: _Dropped
) -> None:
    async with (
        open_emulator() as emulator,
        open_fake_bot_api() as telegram,
        httpx.AsyncClient(timeout=30) as http,
    ):
        settings = bridge_settings(emulator, store=shared_store)

        def adapters() -> list[object]:
            table = {"mode": "webhook", "secret_token": SECRET, "default_agent": "echo"}
            table |= {"user_rate_limit": LIMIT, "user_rate_window": 3600.0}
            return [telegram_adapter(telegram.token, telegram.api_url, **table)]

        async with running(settings, adapters()) as a, running(settings, adapters()) as b:
            for index in range(FLOOD):
                replica = (a, b)[index % 2]
                update = {
                    "update_id": 73_000 + index,
                    "message": USER.says(telegram, USER.id, f"flood {index}"),
                }
                response = await http.post(
                    f"{replica.http.base_url}{WEBHOOK_PATH}",
                    json=update,
                    headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
                )
                assert response.status_code == 200
            with anyio.fail_after(30):
                await dropped.done.wait()
                await telegram.wait_for(
                    lambda: sum(m.text.startswith("flood") for m in telegram.sent(USER.id)) == LIMIT
                )
        invokes = [
            request
            for request in emulator.invokes()
            if str((request.json or {}).get("input", {}).get("text", "")).startswith("flood")
        ]
    assert len(invokes) == LIMIT
    assert dropped.count == FLOOD - LIMIT
    told = [m for m in telegram.sent(USER.id) if "slow down" in m.text]
    assert len(told) == 1
