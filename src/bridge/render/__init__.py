"""Markdown → platform text: Telegram entities, Slack mrkdwn, splitting, streaming healing.

Every function parses with markdown-it (CommonMark plus GFM tables and
strikethrough) and imports no platform SDK.
"""

from __future__ import annotations

from bridge.render._heal import heal_markdown
from bridge.render._markdown import utf16_len
from bridge.render._split import split_markdown
from bridge.render.slack import (
    SLACK_MARKDOWN_TEXT_LIMIT,
    SLACK_TEXT_LIMIT,
    escape_slack_markdown,
    slack_preview,
    split_slack_markdown,
    to_slack_mrkdwn,
    to_slack_mrkdwn_parts,
)
from bridge.render.telegram import (
    TELEGRAM_TEXT_LIMIT,
    TelegramEntity,
    TelegramMessage,
    telegram_preview,
    to_telegram,
    with_status_line,
)

__all__ = [
    "SLACK_MARKDOWN_TEXT_LIMIT",
    "SLACK_TEXT_LIMIT",
    "TELEGRAM_TEXT_LIMIT",
    "TelegramEntity",
    "TelegramMessage",
    "escape_slack_markdown",
    "heal_markdown",
    "slack_preview",
    "split_markdown",
    "split_slack_markdown",
    "telegram_preview",
    "to_slack_mrkdwn",
    "to_slack_mrkdwn_parts",
    "to_telegram",
    "utf16_len",
    "with_status_line",
]
