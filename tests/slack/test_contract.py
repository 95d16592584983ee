"""The Slack adapter keeps the core's adapter contract (bridge.testing.check_adapter_contract)."""

from __future__ import annotations

import anyio
from bridge_slack import SlackAdapter, SlackConfig
from bridge_slack.testing import EventSender, FakeSlack, event_callback

from bridge.emulator import Emulator
from bridge.runtime import Runtime
from bridge.testing import check_adapter_contract

from .conftest import final_texts, next_ts, slack_settings


async def test_the_adapter_keeps_the_adapter_contract_and_renders_upstream_failures(
    emulator: Emulator, slack: FakeSlack
) -> None:
    config = SlackConfig.model_validate(
        {
            "default_agent": "echo",
            "bot_token": slack.bot_token,
            "signing_secret": slack.signing_secret,
            "app_token": slack.app_token,
            "api_url": slack.api_url,
        }
    )
    ts = next_ts()

    async def trigger(runtime: Runtime) -> None:
        secret = slack.signing_secret
        sender = EventSender(f"{runtime.http.base_url}/slack/events", secret)
        event = {"type": "app_mention", "channel": "C1", "user": "U1", "text": "<@UBOT> up?"}
        response = await sender.event(event_callback(event | {"ts": ts}))
        assert response.status_code == 200
        with anyio.fail_after(30):
            await slack.wait_for(
                lambda: any("agent platform" in t for t in final_texts(slack, "C1", ts))
            )

    settings = slack_settings(emulator)
    await check_adapter_contract(SlackAdapter(config), settings, emulator=emulator, trigger=trigger)
