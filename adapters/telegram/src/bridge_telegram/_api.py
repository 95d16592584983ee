"""The one boundary between python-telegram-bot and `bridge.errors`.

`BotRequest` turns HTTP 429 answers into `FloodWait` before python-telegram-bot
builds its `RetryAfter` (whose constructor warns on 22.x), and `bot_call` maps
every Telegram error of an outbound call to `PlatformError` /
`PlatformRateLimitError`, which the output scheduler understands.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from telegram.error import BadRequest, InvalidToken, TelegramError
from telegram.request import BaseRequest, HTTPXRequest, RequestData

from bridge.errors import PlatformError, PlatformRateLimitError

__all__ = [
    "BotRequest",
    "FloodWait",
    "MethodMissingError",
    "NotModifiedError",
    "bot_call",
]

PLATFORM = "telegram"


class FloodWait(TelegramError):
    """Telegram answered 429: wait `seconds` before the next call to that chat."""

    def __init__(self, seconds: float, description: str) -> None:
        super().__init__(description or f"Flood control: retry after {seconds:g}s")
        self.seconds = seconds


class MethodMissingError(PlatformError):
    """The Bot API server does not know the method (an older or third-party server)."""


class NotModifiedError(PlatformError):
    """An edit that would not change the message ("message is not modified")."""


class BotRequest(HTTPXRequest):
    """python-telegram-bot's HTTPX request, reporting 429 as `FloodWait`."""

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        code, payload = await super().do_request(
            url,
            method,
            request_data,
            read_timeout=read_timeout,
            write_timeout=write_timeout,
            connect_timeout=connect_timeout,
            pool_timeout=pool_timeout,
        )
        if code == 429:
            raise _flood_wait(payload)
        return code, payload


def _flood_wait(payload: bytes) -> FloodWait:
    try:
        body = json.loads(payload)
    except ValueError:
        body = {}
    parameters = body.get("parameters") if isinstance(body, dict) else None
    seconds = 1.0
    if isinstance(parameters, dict) and isinstance(parameters.get("retry_after"), int | float):
        seconds = float(parameters["retry_after"])
    description = body.get("description", "") if isinstance(body, dict) else ""
    return FloodWait(seconds, str(description))


@contextmanager
def bot_call(method: str) -> Iterator[None]:
    """Translate what a Bot API call raised into `bridge.errors`.

    Raises:
        PlatformRateLimitError: flood control (429), with `retry_after`.
        NotModifiedError: an edit to the same text.
        MethodMissingError: the server lacks the method (404, or 501/500 from emulators).
        PlatformError: any other failure.
    """
    try:
        yield
    except FloodWait as exc:
        raise PlatformRateLimitError(exc.seconds, platform=PLATFORM, method=method) from exc
    except BadRequest as exc:
        if "not modified" in exc.message.lower():
            raise NotModifiedError(exc.message, platform=PLATFORM, method=method) from exc
        if "not found" in exc.message.lower() and "method" in exc.message.lower():
            raise MethodMissingError(exc.message, platform=PLATFORM, method=method) from exc
        raise PlatformError(exc.message, platform=PLATFORM, method=method) from exc
    except InvalidToken as exc:
        # The Bot API answers 404 both for a bad token and for an unknown method.
        raise MethodMissingError(exc.message, platform=PLATFORM, method=method) from exc
    except TelegramError as exc:
        raise PlatformError(exc.message, platform=PLATFORM, method=method) from exc
