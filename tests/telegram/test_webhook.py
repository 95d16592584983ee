"""Webhook mode: updates POSTed with the secret header; requests without it get 403."""

from __future__ import annotations

import anyio
import httpx
from bridge_telegram import WEBHOOK_PATH
from bridge_telegram.testing import FakeBotAPI

from bridge.emulator import Emulator

from .conftest import ALICE, running_bridge

SECRET = "s3cret-token_value"


async def test_webhook_mode_registers_and_answers_posted_updates(
    emulator: Emulator, fake: FakeBotAPI
) -> None:
    async with running_bridge(emulator, fake, mode="webhook", secret_token=SECRET) as (runtime, _):
        with anyio.fail_after(10):
            await fake.wait_for(lambda: fake.webhook_url)
        assert fake.webhook_url == f"{runtime.http.base_url}{WEBHOOK_PATH}"
        assert fake.webhook_secret == SECRET
        update = fake.queue(ALICE.says(fake, ALICE.id, "via webhook"))
        with anyio.fail_after(10):
            await fake.wait_for(lambda: any(m.text == "via webhook" for m in fake.sent(ALICE.id)))
        fake.replay(update)
        fake.queue(ALICE.says(fake, ALICE.id, "second"))
        with anyio.fail_after(10):
            await fake.wait_for(lambda: any(m.text == "second" for m in fake.sent(ALICE.id)))
    assert not fake.calls_to("getUpdates")
    assert fake.webhook_responses == [200, 200, 200]
    assert [r.json["input"]["text"] for r in emulator.invokes()] == ["via webhook", "second"]


async def test_webhook_requests_without_the_secret_token_are_refused(
    emulator: Emulator, fake: FakeBotAPI
) -> None:
    async with running_bridge(emulator, fake, mode="webhook", secret_token=SECRET) as (runtime, _):
        url = f"{runtime.http.base_url}{WEBHOOK_PATH}"
        update = {"update_id": 1, "message": ALICE.says(fake, ALICE.id, "forged")}
        async with httpx.AsyncClient() as client:
            missing = await client.post(url, json=update)
            wrong = await client.post(
                url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "guess"}
            )
    assert (missing.status_code, wrong.status_code) == (403, 403)
    assert not emulator.invokes()
