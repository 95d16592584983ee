"""The Telegram adapter's test kit: a fake Bot API on a real socket, and a user to talk with.

async with open_fake_bot_api() as fake:
    alice = FakeUser(42, "Alice")
    update = fake.queue(alice.says(fake, 42, "hello"))
    await fake.wait_for(lambda: fake.sent(42))
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import httpx

from bridge.http import HttpApp
from bridge_telegram.testing._checks import entity_problem, text_problem, utf16_len
from bridge_telegram.testing._fake import Call, FakeBotAPI, SentMessage

__all__ = [
    "Call",
    "FakeBotAPI",
    "FakeUser",
    "SentMessage",
    "entity_problem",
    "open_fake_bot_api",
    "text_problem",
]

_MARKS = re.compile(r"(?:^/[A-Za-z0-9_]+(?:@[A-Za-z0-9_]+)?)|(?:@[A-Za-z0-9_]{3,})")


@dataclass(frozen=True)
class FakeUser:
    """A Telegram user who writes to the bot."""

    id: int
    first_name: str
    username: str | None = None
    last_name: str | None = None

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.username:
            data["username"] = self.username
        if self.last_name:
            data["last_name"] = self.last_name
        return data

    def says(
        self,
        fake: FakeBotAPI,
        chat_id: int,
        text: str = "",
        *,
        reply_to: int | None = None,
        topic: int | None = None,
        photo: bytes | None = None,
        document: tuple[str, bytes] | None = None,
    ) -> dict[str, Any]:
        """A message from this user (commands and @mentions get their entities)."""
        chat = fake.chat(chat_id) if chat_id > 0 else fake._chat_of(chat_id)
        message: dict[str, Any] = {
            "message_id": fake.next_message_id(chat_id),
            "date": 1_790_000_000,
            "chat": chat.as_json(),
            "from": self.as_json(),
        }
        field = "caption" if photo is not None or document is not None else "text"
        if text:
            message[field] = text
            entities = [
                {
                    "type": "bot_command" if match.group().startswith("/") else "mention",
                    "offset": utf16_len(text[: match.start()]),
                    "length": utf16_len(match.group()),
                }
                for match in _MARKS.finditer(text)
            ]
            if entities:
                message[f"{field}_entities" if field == "caption" else "entities"] = entities
        if topic is not None:
            message["message_thread_id"] = topic
            message["is_topic_message"] = True
        if reply_to is not None:
            parent = fake.messages.get((chat_id, reply_to))
            origin: dict[str, Any] = {
                "message_id": reply_to,
                "date": 1_790_000_000,
                "chat": chat.as_json(),
            }
            if parent is not None:
                origin["from"] = {
                    "id": fake.bot_id,
                    "is_bot": True,
                    "first_name": "Bridge",
                    "username": fake.username,
                }
                origin["text"] = parent.text
            message["reply_to_message"] = origin
        if photo is not None:
            file_id = fake.add_file(photo, "photo.jpg")
            message["photo"] = [
                {
                    "file_id": file_id,
                    "file_unique_id": f"u{file_id}",
                    "width": 10,
                    "height": 10,
                    "file_size": len(photo),
                }
            ]
        if document is not None:
            name, data = document
            file_id = fake.add_file(data, name)
            message["document"] = {
                "file_id": file_id,
                "file_unique_id": f"u{file_id}",
                "file_name": name,
                "mime_type": "text/plain",
                "file_size": len(data),
            }
        return message


@asynccontextmanager
async def open_fake_bot_api(**options: Any) -> AsyncIterator[FakeBotAPI]:
    """Serve a `FakeBotAPI` on 127.0.0.1:<free port>; `fake.api_url` is its root."""
    fake = FakeBotAPI(**options)
    http = HttpApp()
    http.add_route("/bot{token}/{method}", fake.endpoint, methods=["GET", "POST"])
    http.add_route("/file/bot{token}/{path:path}", fake.file_endpoint, methods=["GET"])
    async with httpx.AsyncClient(timeout=10) as client, anyio.create_task_group() as group:
        fake.http = client
        fake.spawn = lambda func: group.start_soon(func)
        await group.start(http.serve, "127.0.0.1", 0)
        fake.api_url = http.base_url
        try:
            yield fake
        finally:
            fake.closing.set()
            fake._notify()
            group.cancel_scope.cancel()
