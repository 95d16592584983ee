"""Agent Markdown → Telegram text + `MessageEntity` lists, through `bridge.render`.

No MarkdownV2: the core renders plain text, entity dicts and status lines within the
4,096-character limit; this module only converts them to python-telegram-bot objects.
"""

from __future__ import annotations

from dataclasses import dataclass

from telegram import MessageEntity

from bridge.render import TELEGRAM_TEXT_LIMIT as MAX_TEXT
from bridge.render import TelegramEntity, TelegramMessage, telegram_preview, to_telegram, utf16_len

__all__ = ["MAX_TEXT", "Rendered", "render_final", "render_preview", "utf16_len"]


@dataclass(frozen=True, slots=True)
class Rendered:
    """One Telegram message: text and entities (UTF-16 offsets)."""

    text: str
    entities: tuple[MessageEntity, ...] = ()

    @property
    def key(self) -> str:
        """What the output scheduler compares to skip edits that change nothing."""
        marks = ";".join(f"{e.type}:{e.offset}:{e.length}:{e.url or ''}" for e in self.entities)
        return f"{self.text}\x00{marks}"


def _entity(raw: TelegramEntity) -> MessageEntity:
    return MessageEntity(
        raw["type"], raw["offset"], raw["length"], url=raw.get("url"), language=raw.get("language")
    )


def _convert(message: TelegramMessage) -> Rendered:
    return Rendered(message.text, tuple(_entity(e) for e in message.entities))


def render_final(markdown: str) -> list[Rendered]:
    """The final answer as one or more messages (never an empty list)."""
    pieces = [_convert(m) for m in to_telegram(markdown) if m.text.strip()]
    return pieces or [Rendered("(empty answer)")]


def render_preview(partial: str, status: str | None = None) -> Rendered:
    """What a draft or placeholder shows mid-stream: the healed first piece, plus status."""
    return _convert(telegram_preview(partial, status))
