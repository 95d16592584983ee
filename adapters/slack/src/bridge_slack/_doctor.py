"""`bridge doctor` checks for Slack: the token works (`auth.test`) and carries the scopes
the configured triggers need."""

from __future__ import annotations

import aiohttp
from slack_sdk.errors import SlackClientError

from bridge.adapters import Check
from bridge.config import Settings
from bridge_slack._api import SlackApi
from bridge_slack._config import SlackConfig
from bridge_slack._manifest import BOT_SCOPES

__all__ = ["slack_checks"]


async def slack_checks(config: SlackConfig, settings: Settings) -> list[Check]:
    assert config.bot_token is not None  # the model requires it
    api = SlackApi(config.bot_token.get_secret_value(), config.api_base)
    try:
        response = await api.web.api_call("auth.test")
    except (SlackClientError, aiohttp.ClientError, OSError, TimeoutError) as exc:
        # Unreachable, timed out, or refused: a FAIL line, and the other checks still run.
        return [Check("slack auth.test", False, f"{config.api_base}: {type(exc).__name__}: {exc}")]
    data = response.data if isinstance(response.data, dict) else {}
    if not data.get("ok"):
        return [Check("slack auth.test", False, str(data.get("error", "not ok")))]
    checks = [
        Check("slack auth.test", True, f"team {data.get('team')}, bot user {data.get('user_id')}")
    ]
    header = response.headers.get("x-oauth-scopes") or response.headers.get("X-OAuth-Scopes")
    if header is None:
        checks.append(Check("slack scopes", True, "the API did not report scopes; not checked"))
    else:
        granted = {scope.strip() for scope in str(header).split(",") if scope.strip()}
        missing = sorted(set(BOT_SCOPES) - granted)
        detail = "all needed scopes granted" if not missing else "missing: " + ", ".join(missing)
        checks.append(Check("slack scopes", not missing, detail))
    return checks
