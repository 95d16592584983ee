"""Slack Web API calls: one place maps slack_sdk and aiohttp failures to `bridge.errors`.

No call is retried blindly: the SDK's retry handlers are off; rate limits become
`PlatformRateLimitError` (the output scheduler waits `Retry-After`), and a post whose
outcome is unknown is looked up by its metadata tag before it is sent again.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bridge.errors import PlatformError, PlatformRateLimitError

__all__ = ["SlackApi", "SlackCallError", "SlackTransportError"]

logger = logging.getLogger(__name__)

_TAG_EVENT = "bridge_reply"


class SlackCallError(PlatformError):
    """Slack answered `ok:false` (`.error` holds its code, e.g. `channel_not_found`)."""

    def __init__(self, error: str, *, method: str, status: int = 200) -> None:
        super().__init__(f"slack {method}: {error}", platform="slack", method=method)
        self.error = error
        self.status = status


class SlackTransportError(PlatformError):
    """The call may or may not have reached Slack (connection lost, timeout)."""


@asynccontextmanager
async def _mapped(method: str) -> AsyncIterator[None]:
    try:
        yield
    except SlackApiError as exc:
        response = exc.response
        data = response.data if isinstance(response.data, dict) else {}
        error = str(data.get("error") or f"http_{response.status_code}")
        if response.status_code == 429 or error == "ratelimited":
            retry_after = float(response.headers.get("Retry-After", 1) or 1)
            raise PlatformRateLimitError(retry_after, platform="slack", method=method) from None
        raise SlackCallError(error, method=method, status=response.status_code) from None
    except (TimeoutError, aiohttp.ClientError, SlackClientError) as exc:
        raise SlackTransportError(
            f"slack {method}: {exc!r}", platform="slack", method=method
        ) from exc


class SlackApi:
    """The bot's Web API client."""

    def __init__(self, token: str, base_url: str) -> None:
        self.web = AsyncWebClient(token=token, base_url=base_url, retry_handlers=[], timeout=30)

    async def call(self, method: str, *, form: bool = False, **args: Any) -> dict[str, Any]:
        """One call; `form` sends form fields (read methods do not take JSON).

        Raises:
            PlatformRateLimitError: HTTP 429 or `ok:false ratelimited`.
            SlackCallError: any other `ok:false`.
            SlackTransportError: the outcome is unknown.
        """
        clean = {k: v for k, v in args.items() if v is not None}
        async with _mapped(method):
            if form:
                response = await self.web.api_call(method, data=clean)
            else:
                response = await self.web.api_call(method, json=clean)
        data: dict[str, Any] = dict(response.data) if isinstance(response.data, dict) else {}
        return data

    async def post_once(self, tag: str, **args: Any) -> str:
        """`chat.postMessage` tagged with `tag`; after an unknown outcome, look before resending.

        Returns the message ts. Raises like `call`.
        """
        metadata = {"event_type": _TAG_EVENT, "event_payload": {"tag": tag}}
        try:
            posted = await self.call("chat.postMessage", metadata=metadata, **args)
        except SlackTransportError:
            found = await self.find_tagged(str(args["channel"]), args.get("thread_ts"), tag)
            if found is not None:
                return found
            posted = await self.call("chat.postMessage", metadata=metadata, **args)
        return str(posted["ts"])

    async def find_tagged(self, channel: str, thread_ts: str | None, tag: str) -> str | None:
        """The ts of a message of the thread posted with `tag`, if any."""
        if thread_ts is None:
            return None
        replies = await self.call(
            "conversations.replies",
            form=True,
            channel=channel,
            ts=thread_ts,
            include_all_metadata="true",
            limit="200",
        )
        for message in replies.get("messages", []):
            payload = (message.get("metadata") or {}).get("event_payload") or {}
            if payload.get("tag") == tag:
                return str(message["ts"])
        return None

    async def upload(
        self, channel: str, thread_ts: str | None, content: str, filename: str, comment: str
    ) -> None:
        """Attach `content` as a file in the thread (files.uploadV2 flow)."""
        async with _mapped("files.uploadV2"):
            await self.web.files_upload_v2(
                channel=channel,
                thread_ts=thread_ts,
                content=content,
                filename=filename,
                initial_comment=comment,
            )
