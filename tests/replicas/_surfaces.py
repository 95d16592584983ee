"""One conversation per surface, each request of which may go to any replica.

A surface sends request `index` of its conversation to the replica it is given and
returns what the user saw. Adding a request kind is adding one class to `SURFACES`: file
fetches (a file shared through one replica, fetched through the next one's `/files/`
URL) and MCP runs (`start_run`, then `get_run` or `cancel_run` on the next replica) are
two such.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol
from urllib.parse import urlsplit

import anyio
import httpx
from bridge_mcp import MCPAdapter, MCPConfig
from bridge_slack import SlackAdapter, SlackConfig
from bridge_slack.testing import EventSender, FakeSlack, event_callback
from bridge_telegram import WEBHOOK_PATH
from bridge_telegram.testing import FakeBotAPI, FakeUser
from mcp import Client

from bridge.emulator import Emulator
from bridge.render import to_telegram
from bridge.runtime import Runtime
from tests.chaos._kit import telegram_adapter

__all__ = ["SURFACES", "TURNS", "Platforms", "Surface"]

WEBHOOK_SECRET = "replicas-webhook-secret"
ANSWER_TIMEOUT = 30
TURNS = 4
FILE_CAP = 1024
"""`[adapters.slack] max_file_bytes` of every replica."""


@dataclass
class Platforms:
    """The fake platforms every replica talks to, and an HTTP client for the webhooks."""

    slack: FakeSlack
    telegram: FakeBotAPI
    http: httpx.AsyncClient
    emulator: Emulator

    def invokes(self) -> list[dict[str, Any]]:
        """The bodies of the invokes upstream saw, oldest first."""
        return [r.json for r in self.emulator.invokes() if isinstance(r.json, dict)]

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
                "max_file_bytes": FILE_CAP,
                "file_hosts": ["127.0.0.1"],
                "allow_private_file_hosts": True,
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
    requests: int
    """How many requests its conversation has."""

    async def send(self, replica: Runtime, index: int) -> str:
        """Send message `index` to `replica`; return the answer once the user sees it."""


@dataclass
class SlackThread:
    """Mentions in one Slack thread, delivered to `/slack/events`."""

    requests: ClassVar[int] = TURNS
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
        assert (await _slack_event(fake, replica).event(payload)).status_code == 200
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

    requests: ClassVar[int] = TURNS
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

    requests: ClassVar[int] = TURNS
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


def _slack_event(fake: FakeSlack, replica: Runtime) -> EventSender:
    return EventSender(f"{replica.http.base_url}/slack/events", fake.signing_secret)


@dataclass
class SlackFiles:
    """Files shared in a Slack DM, each fetched through the replica after the one that
    re-hosted it: the bytes, then a file whose size Slack misstated, over the cap."""

    platforms: Platforms
    requests: ClassVar[int] = TURNS
    source: str = "slack"
    channel: str = "D7"
    url: str = ""

    async def send(self, replica: Runtime, index: int) -> str:
        if index % 2:
            return await self._fetch(replica)
        fake, text = self.platforms.slack, f"files turn {index}"
        data = b"replica file bytes" if index == 0 else b"x" * (FILE_CAP * 4)
        shared = fake.add_file(data, f"f{index}.txt") | {"size": 10}  # the size may be wrong
        ts = f"1700000100.{100 + index:06d}"
        event = {"type": "message", "subtype": "file_share", "channel": self.channel}
        event |= {"channel_type": "im", "user": "U1", "text": text, "ts": ts, "files": [shared]}
        assert (await _slack_event(fake, replica).event(event_callback(event))).status_code == 200
        with anyio.fail_after(ANSWER_TIMEOUT):
            shown = await fake.wait_for(
                lambda: [
                    m.visible_text for m in fake.replies(self.channel, ts) if m.visible_text == text
                ]
            )
        [invoke] = [r for r in self.platforms.invokes() if r["input"]["text"] == text]
        [self.url] = invoke["input"]["files"]
        return str(shown[0])

    async def _fetch(self, replica: Runtime) -> str:
        """The file through `replica`'s own `/files/` URL: status and bytes."""
        path = urlsplit(self.url).path
        response = await self.platforms.http.get(f"{replica.http.base_url}{path}")
        return f"{response.status_code} {response.content[:40]!r}"


@dataclass
class MCPRuns:
    """`start_run` on one replica, then `get_run` (a finished run) or `cancel_run` (a
    running one) on the next."""

    platforms: Platforms
    requests: ClassVar[int] = TURNS
    source: str = "mcp"
    run: str = ""

    async def send(self, replica: Runtime, index: int) -> str:
        url = f"{replica.http.base_url}/mcp"
        with anyio.fail_after(ANSWER_TIMEOUT):
            async with Client(url, mode="legacy") as client:
                if index % 2 == 0:
                    agent = "echo" if index == 0 else "slow"
                    arguments = {"agent": agent, "message": f"runs turn {index}"}
                    result = await client.call_tool("start_run", arguments)
                    self.run = result.structured_content["run"]
                elif index == 1:
                    result = await client.call_tool("get_run", {"run": self.run, "wait": 20})
                else:
                    result = await client.call_tool("cancel_run", {"run": self.run})
        state = result.structured_content
        return f"{state['status']}: {state.get('answer') or ''}"


SURFACES: dict[str, Callable[[Platforms], Surface]] = {
    "slack": SlackThread,
    "telegram": TelegramChat,
    "mcp": MCPConversation,
    "files": SlackFiles,
    "runs": MCPRuns,
}
