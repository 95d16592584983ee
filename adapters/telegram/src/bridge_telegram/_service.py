"""What Telegram adds to the chat flow (`bridge.chat.ChatService`): updates read into
`Incoming` messages, notes as bot messages, chat administrators, per-chat routes, reply
threads, the typing indicator, files fetched with `getFile`, and the answer view."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import anyio
from telegram import Update

from bridge.chat import AnswerView, ChatService, ChatWording, Incoming
from bridge.conversations import Turn
from bridge.errors import FileRefusedError, PlatformError
from bridge.files import FileBody, fetch_url
from bridge.models import Agent
from bridge.runtime import Runtime
from bridge.stores import InFlightTurn, PlatformMessage
from bridge_telegram._api import bot_call
from bridge_telegram._config import TelegramConfig
from bridge_telegram._inbound import HELP, SOURCE, read_update
from bridge_telegram._outbound import Sender, TelegramAnswer, TelegramPlace

__all__ = ["TelegramService"]


class TelegramService(ChatService[TelegramPlace, TelegramConfig]):
    """Everything the adapter does with an update, given a bot identity and the runtime."""

    source = SOURCE
    place_model = TelegramPlace
    wording = ChatWording(help=HELP)

    def __init__(
        self,
        config: TelegramConfig,
        runtime: Runtime,
        sender: Sender,
        *,
        bot_id: int,
        username: str,
    ) -> None:
        super().__init__(config, runtime)
        self.sender = sender
        self.bot_id = bot_id
        self.username = username

    async def handle(self, update: Update) -> None:
        """Act on one update (detached work: run it through `guarded`)."""
        config = self.config
        message = read_update(update, bot_id=self.bot_id, username=self.username, config=config)
        if message is not None:
            await self.receive(await self._continued(message))

    async def _continued(self, message: Incoming[TelegramPlace]) -> Incoming[TelegramPlace]:
        """In reply-thread mode, a reply to a bot answer continues that answer's thread."""
        replied = message.key.thread.removeprefix("reply:")
        if replied in (message.key.thread, str(message.place.reply_to)):
            return message
        answer = _message(message.place.chat_id, int(replied))
        linked = await self.conversations.conversation_of(answer)
        return message if linked is None else replace(message, key=linked)

    @asynccontextmanager
    async def fetch_file(self, file_id: str, limit: int) -> AsyncIterator[FileBody]:
        """`getFile`, then the file from the configured Bot API server (`FileHost` source).
        That server is the operator's (it may be a local one), so its address is not checked;
        the URL, which carries the token, never leaves this process."""
        try:
            with bot_call("getFile"):
                file = await self.sender.bot.get_file(file_id)
        except PlatformError as exc:
            raise FileRefusedError("unavailable", f"getFile: {exc}", platform=SOURCE) from None
        if file.file_size is not None and file.file_size > limit:
            raise FileRefusedError("too_large", f"{file.file_size} bytes, over {limit}")
        host = urlsplit(self.config.bot_api_root).hostname or ""
        async with fetch_url(
            str(file.file_path), hosts=[host], limit=limit, allow_private=True
        ) as body:
            yield body

    # -- the chat flow's platform side --------------------------------------------------

    async def notify(self, place: TelegramPlace, text: str, *, plain: bool = False) -> None:
        """A message in the chat: Markdown, or (`plain`) the text as typed."""
        await (self.sender.say if plain else self.sender.notify)(place, text)

    def allows(self, incoming: Incoming[TelegramPlace]) -> bool:
        return self.config.is_allowed(incoming.place.chat_id, incoming.user_id)

    async def is_admin(self, incoming: Incoming[TelegramPlace]) -> bool:
        """A creator or administrator of the chat (`getChatMember`)."""
        if incoming.user_id is None:
            return False
        with bot_call("getChatMember"):
            member = await self.sender.bot.get_chat_member(
                incoming.place.chat_id, int(incoming.user_id)
            )
        return member.status in ("creator", "administrator")

    def allows_agent(self, agent: Agent, place: TelegramPlace) -> bool:
        return self.config.allows_agent(place.chat_id, agent.id, agent.name)

    def default_agent(self, place: TelegramPlace) -> str | None:
        return self.config.route_for(place.chat_id).agent or self.config.default_agent

    @asynccontextmanager
    async def answering(self, incoming: Incoming[TelegramPlace]) -> AsyncIterator[None]:
        """Groups see "typing" while the message waits for and runs its turn."""
        async with anyio.create_task_group() as group:
            if not incoming.place.private:
                group.start_soon(self._keep_typing, incoming.place)
            try:
                yield
            finally:
                group.cancel_scope.cancel()

    async def _keep_typing(self, place: TelegramPlace) -> None:
        while True:
            try:
                await self.sender.typing(place)
            except PlatformError as exc:
                self.logger.info("no typing indicator in chat %s: %s", place.chat_id, exc)
                return
            await anyio.sleep(self.config.typing_interval)

    def answer_view(self, incoming: Incoming[TelegramPlace], turn: Turn) -> AnswerView:
        place = incoming.place

        async def record(changes: dict[str, Any]) -> None:
            await turn.set_reply(**changes)
            if "message_id" in changes and incoming.key.thread.startswith("reply:"):
                # A reply to this answer continues its thread (`_continued`).
                answer = _message(place.chat_id, changes["message_id"])
                await self.conversations.link_message(answer, incoming.key)

        return TelegramAnswer(
            self.sender,
            place,
            use_draft=place.private and self.config.use_drafts,
            requester=None if incoming.user_id is None else int(incoming.user_id),
            bot_username=self.username,
            on_record=record,
        )

    async def recovered_view(self, record: InFlightTurn) -> AnswerView | None:
        """The recorded message and overflow parts, edited in place; what was never sent is
        sent (and recorded)."""
        if (place := self.recorded_place(record)) is None:
            return None

        async def keep(changes: dict[str, Any]) -> None:
            nonlocal record
            record = record.model_copy(update={"reply": {**record.reply, **changes}})
            await self.runtime.store.record_turn(record)

        return TelegramAnswer(
            self.sender,
            place,
            use_draft=False,
            on_record=keep,
            message_id=place.message_id,
            parts=place.parts,
        )


def _message(chat_id: int, message_id: int) -> PlatformMessage:
    return PlatformMessage(adapter=SOURCE, space=str(chat_id), id=str(message_id))
