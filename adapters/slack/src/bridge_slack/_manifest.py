"""`bridge slack manifest`: a Slack app manifest generated from `[adapters.slack]`."""

from __future__ import annotations

from typing import Any

from bridge_slack._config import SlackConfig

__all__ = ["BOT_EVENTS", "BOT_SCOPES", "manifest"]

BOT_SCOPES = [
    "app_mentions:read",
    "assistant:write",
    "channels:history",
    "chat:write",
    "commands",
    "files:read",
    "files:write",
    "groups:history",
    "im:history",
    "im:read",
    "im:write",
    "mpim:history",
    "users:read",
    "users:read.email",
]
BOT_EVENTS = [
    "app_mention",
    "assistant_thread_started",
    "message.channels",
    "message.groups",
    "message.im",
    "message.mpim",
]


def manifest(config: SlackConfig, public_url: str | None) -> dict[str, Any]:
    """The app manifest: scopes, events, the slash command, Socket Mode or the request URL."""
    events_url = f"{(public_url or 'https://YOUR-BRIDGE-HOST').rstrip('/')}/slack/events"
    is_http = config.mode == "http"
    command: dict[str, Any] = {
        "command": config.slash_command,
        "description": "Ask an agent (agent:NAME to choose one)",
        "usage_hint": "[agent:NAME] question",
        "should_escape": False,
    }
    settings: dict[str, Any] = {
        "event_subscriptions": {"bot_events": BOT_EVENTS},
        "interactivity": {"is_enabled": True},
        "org_deploy_enabled": False,
        "socket_mode_enabled": not is_http,
        "token_rotation_enabled": False,
    }
    if is_http:
        command["url"] = events_url
        settings["event_subscriptions"]["request_url"] = events_url
        settings["interactivity"]["request_url"] = events_url
    return {
        "_metadata": {"major_version": 1, "minor_version": 1},
        "display_information": {
            "name": config.app_name,
            "description": "Agents of the agent platform, as a Slack bot",
        },
        "features": {
            "app_home": {"messages_tab_enabled": True, "messages_tab_read_only_enabled": False},
            "assistant_view": {"assistant_description": "Ask an agent"},
            "bot_user": {"display_name": config.app_name, "always_online": True},
            "slash_commands": [command],
        },
        "oauth_config": {"scopes": {"bot": BOT_SCOPES}},
        "settings": settings,
    }
