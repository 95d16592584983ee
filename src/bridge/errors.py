"""Every exception the bridge raises, in one tree.

    BridgeError
    ├── ConfigError                 bad configuration (.key, .path)
    ├── StartupError                a listener could not start (port in use, ...) (.key)
    ├── UpstreamError               anything that went wrong talking to the platform
    │   ├── TransportError          the request did not complete at the HTTP level
    │   │   ├── UpstreamConnectError    never reached the server (safe to retry)
    │   │   ├── UpstreamTimeoutError    connect/read/write/pool timeout, or polling past poll_timeout
    │   │   └── StreamError             the SSE stream broke mid-way
    │   │       └── EventTooLargeError  one SSE event exceeded the configured bound
    │   ├── UpstreamStatusError     the platform answered with an HTTP error (.status_code, .detail)
    │   │   ├── AuthenticationError     401
    │   │   ├── PermissionDeniedError   403
    │   │   ├── NotFoundError           404
    │   │   ├── TurnConflictError       409 (a turn is already running on that thread)
    │   │   ├── ValidationError         422 (.errors: the `detail[]` list)
    │   │   ├── RateLimitError          429 (.retry_after)
    │   │   └── ServerError             5xx (.retry_after for 503)
    │   ├── RunFailedError          a run ended failed/error/stopped (.task, .task_id, .status)
    │   └── TurnUnknownError        the platform could not say whether a turn started (.task_id)
    ├── ConversationError           the conversations layer refused a turn
    │   ├── HandleError             a conversation handle was forged, expired or malformed
    │   └── OwnershipError          a thread was continued from a key that does not own it
    ├── StoreError                  the session store failed (.url)
    └── PlatformError               a chat platform API call failed (.platform, .method)
        ├── PlatformRateLimitError  the platform said slow down (.retry_after seconds)
        └── FileRefusedError        a platform file was not fetched (.reason: host, address,
                                    redirect, too_large, unavailable)

Callers catch `UpstreamError` for "the platform did not give us an answer" and
`RunFailedError` for "the agent ran and failed". Transport-level exceptions
from httpx are translated in exactly one place: `bridge.client._transport`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bridge.models import Task

__all__ = [
    "AuthenticationError",
    "BridgeError",
    "ConfigError",
    "ConversationError",
    "EventTooLargeError",
    "FileRefusedError",
    "HandleError",
    "NotFoundError",
    "OwnershipError",
    "PermissionDeniedError",
    "PlatformError",
    "PlatformRateLimitError",
    "RateLimitError",
    "RunFailedError",
    "ServerError",
    "StartupError",
    "StoreError",
    "StreamError",
    "TransportError",
    "TurnConflictError",
    "TurnUnknownError",
    "UpstreamConnectError",
    "UpstreamError",
    "UpstreamStatusError",
    "UpstreamTimeoutError",
    "ValidationError",
]


class BridgeError(Exception):
    """Base class of every bridge error."""


class ConfigError(BridgeError):
    """The configuration is invalid; `key` and `path` say where."""

    def __init__(self, message: str, *, key: str | None = None, path: str | None = None) -> None:
        where = " in ".join(part for part in (key and f"key {key!r}", path and str(path)) if part)
        super().__init__(f"{message} ({where})" if where else message)
        self.key = key
        self.path = path


class StartupError(BridgeError):
    """Something the configuration names could not be started (a port already in use)."""

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(f"{message} (key {key!r})" if key else message)
        self.key = key


class UpstreamError(BridgeError):
    """The platform did not give a usable answer."""


class TransportError(UpstreamError):
    """The HTTP exchange did not complete."""


class UpstreamConnectError(TransportError):
    """The request never reached the server; retrying cannot duplicate work."""


class UpstreamTimeoutError(TransportError):
    """A connect, read, write or pool timeout expired, or a polled task was still not
    finished after `poll_timeout` seconds."""


class StreamError(TransportError):
    """The event stream broke, or carried something that is not an event stream."""

    def __init__(self, message: str, *, task_id: str | None = None) -> None:
        super().__init__(message)
        self.task_id = task_id


class EventTooLargeError(StreamError):
    """One server-sent event exceeded `limit` bytes; the stream was abandoned."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"server-sent event larger than {limit} bytes")
        self.limit = limit


class UpstreamStatusError(UpstreamError):
    """The platform answered with an HTTP error status."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        detail: Any = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.detail = detail
        self.retry_after = retry_after


class AuthenticationError(UpstreamStatusError):
    """401: the API key is missing or invalid."""


class PermissionDeniedError(UpstreamStatusError):
    """403: the resource belongs to another organization."""


class NotFoundError(UpstreamStatusError):
    """404: unknown agent or task."""


class TurnConflictError(UpstreamStatusError):
    """409: a turn is still running on that thread."""


class ValidationError(UpstreamStatusError):
    """422: the request failed validation; `errors` is the `detail[]` list."""

    @property
    def errors(self) -> list[dict[str, Any]]:
        return self.detail if isinstance(self.detail, list) else []


class RateLimitError(UpstreamStatusError):
    """429: rate or billing limit; `retry_after` seconds when the platform said."""


class ServerError(UpstreamStatusError):
    """5xx from the platform."""


class RunFailedError(UpstreamError):
    """The run reached a terminal status other than `completed`."""

    def __init__(self, task: Task) -> None:
        detail = f": {task.result}" if task.result else ""
        super().__init__(f"task {task.id} ended {task.status}{detail}")
        self.task = task
        self.task_id = task.id
        self.status = task.status


class TurnUnknownError(UpstreamError):
    """Whether a turn started upstream could not be told (the check itself failed)."""

    def __init__(self, message: str, *, task_id: str | None = None) -> None:
        super().__init__(message)
        self.task_id = task_id


class ConversationError(BridgeError):
    """The conversations layer refused a turn."""


class HandleError(ConversationError):
    """A conversation handle is malformed, tampered with, or expired (`reason`)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"conversation handle rejected: {reason}")
        self.reason = reason


class OwnershipError(ConversationError):
    """The thread belongs to another conversation key or principal."""


class StoreError(BridgeError):
    """The session store failed."""

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url


class PlatformError(BridgeError):
    """A chat platform (Slack, Telegram, MCP peer) API call failed."""

    def __init__(self, message: str, *, platform: str = "", method: str = "") -> None:
        super().__init__(message)
        self.platform = platform
        self.method = method


class PlatformRateLimitError(PlatformError):
    """The platform asked to wait `retry_after` seconds before the next call."""

    def __init__(
        self, retry_after: float, *, platform: str = "", method: str = "", message: str = ""
    ) -> None:
        super().__init__(
            message or f"{platform or 'platform'} rate limit: retry after {retry_after:g}s",
            platform=platform,
            method=method,
        )
        self.retry_after = retry_after


class FileRefusedError(PlatformError):
    """A chat platform's file was not fetched: `.reason` is `host` (not an allowed file
    host), `address` (a private, loopback or link-local address), `redirect` (off the
    allowed hosts), `too_large` (over the size cap) or `unavailable` (the platform failed)."""

    def __init__(self, reason: str, message: str, *, platform: str = "") -> None:
        super().__init__(message, platform=platform, method="file")
        self.reason = reason
