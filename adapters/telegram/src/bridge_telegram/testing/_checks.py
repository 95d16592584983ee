"""Reading Bot API requests, and what the Bot API rejects: text length, entity layout."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

__all__ = ["MAX_TEXT", "entity_problem", "request_params", "text_problem", "utf16_len"]

_JSON_FIELDS = frozenset(
    {
        "entities",
        "reply_parameters",
        "link_preview_options",
        "commands",
        "allowed_updates",
        "reply_markup",
        "caption_entities",
    }
)


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


async def request_params(request: Request) -> dict[str, Any]:
    """Parameters of a Bot API call: query, JSON body, or form with JSON-encoded fields."""
    params: dict[str, Any] = dict(request.query_params)
    if request.method != "POST":
        return params
    if request.headers.get("content-type", "").startswith("application/json"):
        body = await request.json()
        params.update(body if isinstance(body, dict) else {})
        return params
    form = await request.form()
    for name, value in form.items():
        if isinstance(value, str) and name in _JSON_FIELDS:
            params[name] = json.loads(value)
        else:
            params[name] = value
    return params
