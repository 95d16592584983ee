"""Guards of the HTTP edge: body size and read-time limits (ASGI), a header-read timeout and a
connection cap (socket level, on uvicorn's h11 protocol), rate-limited listener logs, and
the checks of a platform's webhook (authenticated before parsed, a bad body a 400).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import h11
from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = [
    "BodyLimit",
    "RateLimitedLog",
    "guarded_protocol",
    "header_matches",
    "rate_limited_logs",
    "webhook_endpoint",
]

logger = logging.getLogger("bridge.http")

_CLOSE = {"connection": "close"}

T = TypeVar("T")

#: What a parser of untrusted JSON raises on a body that is no delivery; RecursionError:
#: nesting past the parser's depth.
_UNREADABLE = (ValueError, TypeError, KeyError, AttributeError, RecursionError)


class _Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class BodyLimit:
    """Refuses request bodies over the path's limit: by `Content-Length` before reading (413),
    while streaming (413 once the limit is passed), and bodies that take longer than
    `timeout` seconds to arrive (408). A refused request's connection is closed."""

    def __init__(
        self, app: ASGIApp, *, default: int, limits: Mapping[str, int], timeout: float
    ) -> None:
        self.app = app
        self.default = default
        self.limits = limits
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            limit = self.limits.get(scope["path"], self.default)
            declared = _content_length(scope)
            if declared is not None and declared > limit:
                raise _Refused(413, f"body larger than {limit} bytes")
            await self.app(scope, self._limited(receive, limit), tracked)
        except _Refused as refused:
            if started:
                raise
            response = PlainTextResponse(refused.reason, refused.status, headers=_CLOSE)
            await response(scope, receive, send)

    def _limited(self, receive: Receive, limit: int) -> Receive:
        received = 0
        deadline = time.monotonic() + self.timeout

        async def limited() -> Message:
            nonlocal received, deadline
            with anyio.move_on_after(max(deadline - time.monotonic(), 0)) as waited:
                message = await receive()
            if waited.cancelled_caught:
                raise _Refused(408, "request body too slow")
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    if message.get("more_body", False):
                        await _drain(receive, budget=limit, deadline=deadline)
                    raise _Refused(413, f"body larger than {limit} bytes")
                if not message.get("more_body", False):
                    deadline = float("inf")  # read: later receives wait for the disconnect
            return message

        return limited


async def _drain(receive: Receive, *, budget: int, deadline: float) -> None:
    """Read and drop up to `budget` more bytes of a refused body, so that a client which
    stops soon after the cap reads the 413 (closing with unread data would reset the
    connection and lose it); a flood past the budget gets its connection closed."""
    dropped = 0
    with anyio.move_on_after(max(deadline - time.monotonic(), 0)):
        while dropped <= budget:
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                return
            dropped += len(message.get("body", b""))


def _content_length(scope: Scope) -> int | None:
    """The declared length; a malformed one is a 400 (h11 refuses most before we see them)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            if not value.isdigit():
                raise _Refused(400, "malformed Content-Length")
            return int(value)
    return None


def guarded_protocol(
    *, header_timeout: float, max_connections: int, on_refused: Callable[[], None]
) -> type[H11Protocol]:
    """uvicorn's h11 protocol with what it lacks: a header-read timeout (a connection that
    has not sent a whole request head `header_timeout` seconds after connecting or after
    its previous response is closed; so is one answered before its body was read), and a
    cap on open connections (one over the cap is closed at once, freeing its descriptor)."""
    # Loaded by a server that listens only (`bridge mcp` over stdio does not).
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class GuardedH11Protocol(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            over = len(self.connections) >= max_connections
            super().connection_made(transport)
            if over:
                on_refused()
                transport.abort()
                return
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if not self._waiting():
                self._disarm()
            elif self._header_timer is None:
                self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self.transport.is_closing():
                return
            if self.conn.their_state is h11.SEND_BODY:
                # Answered without reading the whole body: h11 would read and drop the
                # rest, however long it is. Close instead.
                self.transport.close()
            elif self._waiting():
                self._arm()

        def _waiting(self) -> bool:
            """Waiting for a request head: nothing for the app to do yet."""
            return self.conn.their_state is h11.IDLE

        def _arm(self) -> None:
            self._disarm()
            self._header_timer = self.loop.call_later(header_timeout, self._headers_too_slow)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_too_slow(self) -> None:
            self._header_timer = None
            if not self.transport.is_closing() and self._waiting():
                self.transport.close()

    return GuardedH11Protocol


class RateLimitedLog(logging.Filter):
    """Lets one record per message template through every `interval` seconds; the next
    one let through says how many were dropped. For loggers an attacker can flood."""

    def __init__(self, interval: float) -> None:
        super().__init__()
        self.interval = interval
        self._last: dict[tuple[str, str], float] = {}
        self._dropped: dict[tuple[str, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg))
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._dropped[key] = self._dropped.get(key, 0) + 1
            return False
        self._last[key] = now
        dropped = self._dropped.pop(key, 0)
        if dropped:
            record.msg = f"{record.msg} ({dropped} similar messages suppressed)"
        return True


#: The listener's loggers: accept failures (asyncio), malformed requests (uvicorn).
LISTENER_LOGGERS = ("asyncio", "uvicorn.error", "bridge.http")


@contextmanager
def rate_limited_logs(interval: float, names: tuple[str, ...] = LISTENER_LOGGERS) -> Iterator[Any]:
    """Install a `RateLimitedLog` on each of `names` for the duration of the block."""
    gate = RateLimitedLog(interval)
    loggers = [logging.getLogger(name) for name in names]
    for each in loggers:
        each.addFilter(gate)
    try:
        yield gate
    finally:
        for each in loggers:
            each.removeFilter(gate)


def header_matches(request: Request, name: str, secret: SecretStr) -> bool:
    """Whether header `name` carries `secret`, compared in constant time."""
    given = request.headers.get(name, "").encode()
    return bool(given) and hmac.compare_digest(given, secret.get_secret_value().encode())


def webhook_endpoint(
    handle: Callable[[Request, T], Awaitable[Response]],
    *,
    verify: Callable[[Request, bytes], bool],
    parse: Callable[[Request, bytes], T | None],
    refused: int = 401,
) -> Callable[[Request], Awaitable[Response]]:
    """A platform's webhook: the raw body is authenticated by `verify` before anything parses
    (or logs) it, answered `refused` when it fails; then `parse`d, a body it refuses (None,
    or an error of reading untrusted JSON) answered 400 rather than 500; then `handle`d."""

    async def endpoint(request: Request) -> Response:
        body = await request.body()  # bounded by the route's max_body
        if not verify(request, body):
            return Response(HTTPStatus(refused).phrase, status_code=refused)
        try:
            delivery = parse(request, body)
        except _UNREADABLE:
            delivery = None
        if delivery is None:
            return Response("bad request", status_code=400)
        return await handle(request, delivery)

    return endpoint
