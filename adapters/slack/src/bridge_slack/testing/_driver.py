"""Drive the bridge as Slack does: signed Events API requests, slash commands, button clicks."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from typing import Any
from urllib.parse import urlencode

import httpx

__all__ = ["EventSender", "event_callback", "sign"]


def sign(secret: str, body: str, timestamp: int | None = None) -> dict[str, str]:
    """Headers Slack sends: `X-Slack-Request-Timestamp` and `X-Slack-Signature` (v0 HMAC)."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest}"}


def event_callback(
    event: dict[str, Any],
    *,
    team_id: str = "T0001",
    bot_user_id: str = "UBOT",
    event_id: str | None = None,
) -> dict[str, Any]:
    """An Events API `event_callback` envelope around `event`."""
    return {
        "token": "verification-token",
        "team_id": team_id,
        "api_app_id": "AAPP",
        "event": {"event_ts": event.get("ts", f"{time.time():.6f}"), **event},
        "type": "event_callback",
        "event_id": event_id or "Ev" + secrets.token_hex(5).upper(),
        "event_time": int(time.time()),
        "authorizations": [{"team_id": team_id, "user_id": bot_user_id, "is_bot": True}],
    }


class EventSender:
    """Signs and POSTs requests to the bridge's `/slack/events`."""

    def __init__(self, url: str, signing_secret: str) -> None:
        self.url = url
        self.signing_secret = signing_secret

    async def post(
        self,
        body: str,
        content_type: str,
        *,
        retry_num: int | None = None,
        timestamp: int | None = None,
        secret: str | None = None,
    ) -> httpx.Response:
        headers = {
            "Content-Type": content_type,
            **sign(secret or self.signing_secret, body, timestamp),
        }
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        async with httpx.AsyncClient(timeout=10) as http:
            return await http.post(self.url, content=body, headers=headers)

    async def event(self, payload: dict[str, Any], **options: Any) -> httpx.Response:
        return await self.post(json.dumps(payload), "application/json", **options)

    async def command(self, fields: dict[str, str], **options: Any) -> httpx.Response:
        return await self.post(urlencode(fields), "application/x-www-form-urlencoded", **options)

    async def action(self, payload: dict[str, Any], **options: Any) -> httpx.Response:
        body = urlencode({"payload": json.dumps(payload)})
        return await self.post(body, "application/x-www-form-urlencoded", **options)
