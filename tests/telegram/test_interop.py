"""Round trips against a third-party Bot API emulator (telegram-test-api, pinned from npm)."""

from __future__ import annotations

from pathlib import Path

import anyio
from bridge_telegram.testing import FakeBotAPI

from bridge.emulator import Emulator

from ._peer import open_telegram_test_api
from .conftest import running_bridge

TOKEN = "777:INTEROP"
USER = {"id": 501, "is_bot": False, "first_name": "Peer", "username": "peer"}


async def _round_trip(emulator: Emulator, tmp_path: Path, **telegram: object) -> list[str]:
    async with open_telegram_test_api(tmp_path) as front:
        bot = FakeBotAPI(token=TOKEN)  # only for the harness's token and URL
        bot.api_url = front.url
        async with running_bridge(emulator, bot, **telegram):
            if telegram.get("mode") == "webhook":
                with anyio.fail_after(10):
                    await front.wait_for(lambda: front.webhook_target)
            await front.user_says(TOKEN, 501, USER, "hello from the emulator")
            with anyio.fail_after(15):
                await front.wait_for(lambda: "hello from the emulator" in front.sent_texts())
            history = await front.history(TOKEN)
        if telegram.get("mode") == "webhook":
            assert front.webhook_statuses == [200]
        return [str(item["message"].get("text")) for item in history]


async def test_polling_round_trip_with_telegram_test_api(
    emulator: Emulator, tmp_path: Path
) -> None:
    texts = await _round_trip(emulator, tmp_path)
    assert "hello from the emulator" in texts
    [invoke] = emulator.invokes()
    assert invoke.json["source"] == "telegram"


async def test_webhook_round_trip_with_telegram_test_api(
    emulator: Emulator, tmp_path: Path
) -> None:
    texts = await _round_trip(emulator, tmp_path, mode="webhook", secret_token="interop-secret")
    assert "hello from the emulator" in texts
