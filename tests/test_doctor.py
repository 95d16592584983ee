"""`bridge doctor`'s platform checks against the fake Slack Web API and the fake Bot API."""

from __future__ import annotations

from bridge_slack import SlackAdapter, SlackConfig
from bridge_slack.testing import open_fake_slack
from bridge_telegram import TelegramAdapter, TelegramConfig
from bridge_telegram.testing import open_fake_bot_api

from bridge.config import load_settings

SETTINGS = load_settings(None, environ={})


async def test_slack_doctor_checks_the_token_and_names_missing_scopes() -> None:
    async with open_fake_slack() as slack:
        config = SlackConfig.model_validate(
            {
                "bot_token": slack.bot_token,
                "signing_secret": slack.signing_secret,
                "api_url": slack.api_url,
            }
        )
        healthy = await SlackAdapter.doctor(config, SETTINGS)
        slack.scopes.remove("chat:write")
        missing = await SlackAdapter.doctor(config, SETTINGS)
        wrong = SlackConfig.model_validate(
            {"bot_token": "xoxb-wrong", "api_url": slack.api_url, "signing_secret": "s"}
        )
        refused = await SlackAdapter.doctor(wrong, SETTINGS)
    assert [c.ok for c in healthy] == [True, True]
    assert [(c.name, c.ok) for c in missing] == [("slack auth.test", True), ("slack scopes", False)]
    assert "chat:write" in missing[1].detail
    assert not refused[0].ok and "invalid_auth" in refused[0].detail


async def test_telegram_doctor_checks_the_token_and_the_webhook_against_the_mode() -> None:
    async with open_fake_bot_api() as fake:
        polling = TelegramConfig.model_validate({"bot_token": fake.token, "api_url": fake.api_url})
        healthy = await TelegramAdapter.doctor(polling, SETTINGS)
        fake.webhook_url = "https://elsewhere.example/hook"
        conflicting = await TelegramAdapter.doctor(polling, SETTINGS)
    assert [c.ok for c in healthy] == [True, True]
    assert conflicting[1].ok is False and "polling would conflict" in conflicting[1].detail
