"""The bridge's Telegram adapter: agents as Telegram bots (python-telegram-bot 22)."""

from bridge_telegram._config import ChatRoute, TelegramConfig
from bridge_telegram.adapter import WEBHOOK_PATH, TelegramAdapter

__all__ = ["WEBHOOK_PATH", "ChatRoute", "TelegramAdapter", "TelegramConfig"]
