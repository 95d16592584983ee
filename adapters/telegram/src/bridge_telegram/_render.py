"""Agent Markdown → Telegram text + `MessageEntity` lists, through `bridge.render`.

No MarkdownV2: the core's Markdown parser yields plain text and entity dicts;
this module only converts them to python-telegram-bot objects, adds a status
line, and keeps every piece within the 4,096-character limit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from telegram import MessageEntity

from bridge.render import TELEGRAM_TEXT_LIMIT as MAX_TEXT
from bridge.render import heal_markdown, to_telegram, utf16_len

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


def _entity(raw: Mapping[str, Any] | MessageEntity) -> MessageEntity:
    if isinstance(raw, MessageEntity):
        return raw
    extra = {k: raw[k] for k in ("url", "language", "custom_emoji_id") if raw.get(k)}
    return MessageEntity(
        type=raw["type"], offset=int(raw["offset"]), length=int(raw["length"]), **extra
    )


def _convert(message: Any) -> Rendered:
    entities: Sequence[Any] = getattr(message, "entities", ()) or ()
    return Rendered(str(message.text), tuple(_entity(e) for e in entities))


def render_final(markdown: str) -> list[Rendered]:
    """The final answer as one or more messages (never an empty list)."""
    pieces = [_convert(m) for m in to_telegram(markdown) if str(m.text).strip()]
    return pieces or [Rendered("(empty answer)")]


def with_status(body: Rendered, status: str | None) -> Rendered:
    """Prefix an italic status line, unless it would overflow the message."""
    if not status:
        return body
    prefix = f"{status}\n\n" if body.text else status
    shift = utf16_len(prefix)
    if shift + utf16_len(body.text) > MAX_TEXT:
        return body
    italic = MessageEntity(type=MessageEntity.ITALIC, offset=0, length=utf16_len(status))
    moved = tuple(
        MessageEntity(
            type=e.type, offset=e.offset + shift, length=e.length, url=e.url, language=e.language
        )
        for e in body.entities
    )
    return Rendered(prefix + body.text, (italic, *moved))


def render_preview(partial: str, status: str | None = None) -> Rendered:
    """What a draft or placeholder shows mid-stream: the healed first piece, plus status."""
    body = Rendered("")
    if partial.strip():
        pieces = to_telegram(heal_markdown(partial))
        if pieces:
            body = _convert(pieces[0])
    return with_status(body, status)
