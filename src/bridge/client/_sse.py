"""Server-sent events, parsed by the WHATWG "parse an event stream" rules.

Hand-written because httpx-sse 0.4.3 dispatches empty events for keep-alives and
blank lines once an `id:` was seen and keeps a leading BOM; the rules are short.
Memory stays bounded: an event (or a line) larger than `max_event_bytes` raises.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

from bridge.errors import EventTooLargeError

__all__ = ["SSEDecoder", "ServerSentEvent", "aiter_sse"]

_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    data: str
    event: str = "message"
    id: str = ""
    retry: int | None = None


class SSEDecoder:
    """Incremental decoder: feed it bytes as they arrive, get complete events back."""

    def __init__(self, max_event_bytes: int = 4 * 1024 * 1024) -> None:
        self._limit = max_event_bytes
        self._text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""  # text after the last line end
        self._after_cr = False  # last chunk ended in CR: a leading LF belongs to it
        self._at_start = True  # a BOM is stripped only at the very start
        self._data: list[str] = []
        self._size = 0
        self._event = ""
        self._last_id = ""
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Decode a network chunk; return the events it completed.

        Raises:
            EventTooLargeError: the current event or line exceeds the bound.
        """
        text = self._text.decode(chunk)
        if self._at_start and text:
            self._at_start = False
            if text[0] == "\ufeff":
                text = text[1:]
        if self._after_cr and text:
            self._after_cr = False
            if text[0] == "\n":
                text = text[1:]
        if not text:
            return []
        buffer = self._pending + text if self._pending else text
        lines = _LINE_END.split(buffer)
        self._pending = lines.pop()
        self._after_cr = buffer[-1] == "\r"
        if len(self._pending) + self._size > self._limit:
            raise EventTooLargeError(self._limit)
        handle = self._line
        return [event for event in map(handle, lines) if event is not None]

    def _line(self, line: str) -> ServerSentEvent | None:
        if not line:
            return self._dispatch()
        if line[0] == ":":
            return None
        if line.startswith("data: "):  # the common case, without partition()
            value = line[6:]
            self._size += len(value) + 1
            if self._size > self._limit:
                raise EventTooLargeError(self._limit)
            self._data.append(value)
            return None
        name, colon, value = line.partition(":")
        if colon and value[:1] == " ":
            value = value[1:]
        if name == "data":
            self._size += len(value) + 1
            if self._size > self._limit:
                raise EventTooLargeError(self._limit)
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        event_type, self._event = self._event, ""
        if not self._data:
            return None
        data = "\n".join(self._data)
        self._data = []
        self._size = 0
        return ServerSentEvent(
            data=data, event=event_type or "message", id=self._last_id, retry=self._retry
        )


async def aiter_sse(
    chunks: AsyncIterator[bytes], max_event_bytes: int = 4 * 1024 * 1024
) -> AsyncIterator[ServerSentEvent]:
    """Events from a byte stream; an unterminated event at the end is discarded (per spec)."""
    decoder = SSEDecoder(max_event_bytes)
    async for chunk in chunks:
        try:
            events = decoder.feed(chunk)
        except EventTooLargeError:
            # Raised afresh, without the frames that hold the oversize text: the error may
            # be kept (logged, chained) while the client asks the platform about the turn.
            del decoder
            raise EventTooLargeError(max_event_bytes) from None
        for event in events:
            yield event
