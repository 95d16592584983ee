"""One conversation per surface, each request of which may go to any replica.

A surface sends message `index` of its conversation to the replica it is given and
returns the answer the user saw. Adding a request kind (file fetches, run polling) is
adding one class to `SURFACES`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio
import httpx
from bridge_mcp import MCPAdapter, MCPConfig
from bridge_slack import SlackAdapter, SlackConfig
from bridge_slack.testing import EventSender, FakeSlack, event_callback
from bridge_telegram import WEBHOOK_PATH
from bridge_telegram.testing import FakeBotAPI, FakeUser
from mcp import Client

from bridge.render import to_telegram
from bridge.runtime import Runtime
from tests.chaos._kit import telegram_adapter

__all__ = ["SURFACES", "Platforms", "Surface"]

WEBHOOK_SECRET = "replicas-webhook-secret"
ANSWER_TIMEOUT = 30


@dataclass
class Platforms:
    """The fake platforms every replica talks to, and an HTTP client for the webhooks."""

    slack: FakeSlack
    telegram: FakeBotAPI
    http: httpx.AsyncClient

    def adapters(self) -> list[Any]:
        """One replica's adapters: every surface in its replica-safe mode."""
        slack = SlackConfig.model_validate(
            {
                "mode": "http",
                "bot_token": self.slack.bot_token,
                "signing_secret": self.slack.signing_secret,
                "api_url": self.slack.api_url,
                "default_agent": "echo",
                "streaming": False,
            }
        )
        telegram = telegram_adapter(
            self.telegram.token,
            self.telegram.api_url,
            mode="webhook",
            secret_token=WEBHOOK_SECRET,
            default_agent="echo",
        )
        mcp = MCPConfig.model_validate({"stateless": True, "user_email": "dev@example.com"})
        return [SlackAdapter(slack), telegram, MCPAdapter(mcp)]


class Surface(Protocol):
    """A conversation on one surface."""

    source: str
    """The `source` its invokes carry upstream."""

    async def send(self, replica: Runtime, index: int) -> str:
        """Send message `index` to `replica`; return the answer once the user sees it."""


@dataclass
class SlackThread:
    """Mentions in one Slack thread, delivered to `/slack/events`."""

    platforms: Platforms
    source: str = "slack"
    channel: str = "C1"
    root: str = "1700000000.000100"

    async def send(self, replica: Runtime, index: int) -> str:
        text, ts = f"slack turn {index}", f"1700000000.{100 + index:06d}"
        event = {"type": "app_mention", "channel": self.channel, "user": "U1", "ts": ts}
        if index:
            event["thread_ts"] = self.root
        payload = event_callback({**event, "text": f"<@UBOT> {text}"})
        fake = self.platforms.slack
        sender = EventSender(f"{replica.http.base_url}/slack/events", fake.signing_secret)
        assert (await sender.event(payload)).status_code == 200
        with anyio.fail_after(ANSWER_TIMEOUT):
            shown = await fake.wait_for(
                lambda: [
                    m.visible_text
                    for m in fake.replies(self.channel, self.root)
                    if m.visible_text == text
                ]
            )
        return str(shown[0])


@dataclass
class TelegramChat:
    """Messages of one private Telegram chat, delivered to the webhook."""

    platforms: Platforms
    source: str = "telegram"
    user: FakeUser = field(default_factory=lambda: FakeUser(7001, "Rep"))

    async def send(self, replica: Runtime, index: int) -> str:
        fake, text = self.platforms.telegram, f"telegram turn {index}"
        update = {"update_id": 70_000 + index, "message": self.user.says(fake, self.user.id, text)}
        response = await self.platforms.http.post(
            f"{replica.http.base_url}{WEBHOOK_PATH}",
            json=update,
            headers={"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET},
        )
        assert response.status_code == 200
        answer = to_telegram(text)[0].text
        with anyio.fail_after(ANSWER_TIMEOUT):
            await fake.wait_for(lambda: any(m.text == answer for m in fake.sent(self.user.id)))
        return answer


@dataclass
class MCPConversation:
    """Stateless MCP tool calls, each continuing through the previous call's handle."""

    platforms: Platforms
    source: str = "mcp"
    handle: str | None = None

    async def send(self, replica: Runtime, index: int) -> str:
        arguments: dict[str, Any] = {"message": f"mcp turn {index}"}
        if self.handle is not None:
            arguments["conversation"] = self.handle
        with anyio.fail_after(ANSWER_TIMEOUT):
            async with Client(f"{replica.http.base_url}/mcp", mode="legacy") as client:
                result = await client.call_tool("echo", arguments)
        assert result.is_error is False, result.content
        self.handle = result.structured_content["conversation"]
        return str(result.structured_content["answer"])


SURFACES: dict[str, Callable[[Platforms], Surface]] = {
    "slack": SlackThread,
    "telegram": TelegramChat,
    "mcp": MCPConversation,
}
