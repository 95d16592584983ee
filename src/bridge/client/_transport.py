"""The one boundary where httpx exceptions and HTTP error statuses become `bridge.errors`.

Modelled on httpx's own `map_httpcore_exceptions`: a context manager around every
request, so no other module needs to know httpx's exception classes.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from bridge import errors

__all__ = ["error_for_response", "map_transport_errors", "parse_retry_after", "read_capped"]

_STATUS_ERRORS: dict[int, type[errors.UpstreamStatusError]] = {
    401: errors.AuthenticationError,
    403: errors.PermissionDeniedError,
    404: errors.NotFoundError,
    409: errors.TurnConflictError,
    422: errors.ValidationError,
    429: errors.RateLimitError,
}


@contextmanager
def map_transport_errors(*, streaming: bool = False, task_id: str | None = None) -> Iterator[None]:
    """Translate httpx's exceptions into the bridge's tree.

    `ConnectError`/`ConnectTimeout` mean the request never reached the server,
    so they become `UpstreamConnectError`, the one transport error that is safe to retry.
    """
    try:
        yield
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise errors.UpstreamConnectError(f"cannot connect to the platform: {exc}") from exc
    except httpx.TimeoutException as exc:
        if streaming:
            raise errors.StreamError(f"stream timed out: {exc!r}", task_id=task_id) from exc
        raise errors.UpstreamTimeoutError(f"platform request timed out: {exc!r}") from exc
    except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
        if streaming:
            raise errors.StreamError(f"stream broke: {exc!r}", task_id=task_id) from exc
        raise errors.TransportError(f"platform connection failed: {exc!r}") from exc
    except httpx.HTTPError as exc:
        raise errors.TransportError(f"platform request failed: {exc!r}") from exc


async def read_capped(response: httpx.Response, limit: int) -> httpx.Response:
    """Read a streamed response's body, refusing more than `limit` bytes, and return it as
    a complete response (so that a hostile or broken server cannot exhaust memory).

    Raises:
        TransportError: the body is larger than `limit`.
    """
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > limit:
                chunks.clear()  # the traceback keeps this frame alive: drop what it holds
                request = response.request
                raise errors.TransportError(
                    f"platform response to {request.method} {request.url.path} is over "
                    f"{limit} bytes (upstream.max_response_bytes)"
                )
            chunks.append(chunk)
    finally:
        await response.aclose()
    # The body is decoded already: the rebuilt response must not decode it again.
    headers = [
        (key, value)
        for key, value in response.headers.multi_items()
        if key.lower() not in ("content-encoding", "content-length", "transfer-encoding")
    ]
    return httpx.Response(
        response.status_code,
        headers=headers,
        content=b"".join(chunks),
        request=response.request,
        extensions=response.extensions,
    )


def parse_retry_after(value: str | None) -> float | None:
    """`Retry-After` as seconds (delta-seconds or an HTTP date); None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def error_for_response(response: httpx.Response) -> errors.UpstreamStatusError:
    """The error for an HTTP error response whose body has been read."""
    detail: Any
    try:
        body = response.json()
        detail = body.get("detail", body) if isinstance(body, dict) else body
    except ValueError:
        detail = response.text[:2000] or None
    status = response.status_code
    kind = _STATUS_ERRORS.get(
        status, errors.ServerError if status >= 500 else errors.UpstreamStatusError
    )
    message = (
        f"platform answered {status} for {response.request.method} {response.request.url.path}"
    )
    if isinstance(detail, str) and detail:
        message += f": {detail}"
    elif isinstance(detail, list) and detail:
        message += (
            f": {detail[0].get('msg', detail[0]) if isinstance(detail[0], dict) else detail[0]}"
        )
    return kind(
        message,
        status_code=status,
        detail=detail,
        retry_after=parse_retry_after(response.headers.get("retry-after")),
    )
