"""What the Bot API rejects in a message: the text length and the entity layout."""

from __future__ import annotations

from typing import Any

__all__ = ["MAX_TEXT", "entity_problem", "text_problem", "utf16_len"]

MAX_TEXT = 4096


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def text_problem(text: Any) -> str | None:
    """Why Telegram would refuse this text, or None."""
    if not isinstance(text, str) or not text.strip():
        return "Bad Request: message text is empty"
    if utf16_len(text) > MAX_TEXT:
        return "Bad Request: message is too long"
    return None


def entity_problem(text: str, entities: Any) -> str | None:
    """Why Telegram would refuse these entities: out of bounds, empty, or overlapping
    without nesting. None when they are fine."""
    if entities is None:
        return None
    if not isinstance(entities, list):
        return "Bad Request: can't parse entities: not a list"
    size = utf16_len(text)
    spans: list[tuple[int, int]] = []
    for entity in entities:
        if not isinstance(entity, dict) or not isinstance(entity.get("type"), str):
            return "Bad Request: can't parse entities: malformed entity"
        offset, length = entity.get("offset"), entity.get("length")
        if not isinstance(offset, int) or not isinstance(length, int):
            return "Bad Request: can't parse entities: offset and length must be integers"
        if offset < 0 or length <= 0 or offset + length > size:
            return f"Bad Request: can't parse entities: entity {entity['type']} out of bounds"
        if entity["type"] == "text_link" and not entity.get("url"):
            return "Bad Request: can't parse entities: text_link without url"
        spans.append((offset, offset + length))
    for i, (a_start, a_end) in enumerate(spans):
        for b_start, b_end in spans[i + 1 :]:
            disjoint = a_end <= b_start or b_end <= a_start
            nested = (a_start <= b_start and b_end <= a_end) or (
                b_start <= a_start and a_end <= b_end
            )
            if not (disjoint or nested):
                return "Bad Request: can't parse entities: entities overlap without nesting"
    return None
