"""`bridge doctor` checks for Telegram: the token works (`getMe`) and the webhook state
matches the configured mode."""

from __future__ import annotations

from typing import Any

from bridge.adapters import Check
from bridge.config import Settings
from bridge.errors import PlatformError
from bridge_telegram._api import MethodMissingError, bot_call
from bridge_telegram._config import TelegramConfig

__all__ = ["telegram_checks"]


async def telegram_checks(
    config: TelegramConfig, settings: Settings, application: Any
) -> list[Check]:
    bot = application.bot
    try:
        # `async with bot` calls getMe itself: an unreachable server, a timeout or a refused
        # token is raised there, so the whole exchange is translated.
        with bot_call("getMe"):
            async with bot:
                me = await bot.get_me()
                webhook = await bot.get_webhook_info()
    except MethodMissingError:
        return [Check("telegram getMe", False, f"{config.bot_api_root}: the bot token was refused")]
    except PlatformError as exc:
        return [Check("telegram getMe", False, f"{config.bot_api_root}: {exc}")]
    checks = [Check("telegram getMe", True, f"@{me.username} (id {me.id})")]
    if config.mode == "webhook":
        ok = bool(webhook.url)
        detail = f"webhook {webhook.url or 'not set yet (set at start)'}"
        if webhook.last_error_message:
            ok, detail = False, f"{detail}; last error: {webhook.last_error_message}"
        checks.append(Check("telegram webhook", ok or not webhook.url, detail))
    else:
        ok = not webhook.url
        detail = (
            "no webhook: polling can run"
            if ok
            else f"a webhook is set ({webhook.url}): polling would conflict"
        )
        checks.append(Check("telegram webhook", ok, detail))
    return checks
