"""What Telegram adds to the chat flow (`bridge.chat.ChatService`): updates read into
`Incoming` messages, notes as bot messages, chat administrators, per-chat routes, reply
threads, the typing indicator, files fetched with `getFile`, and the answer view."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import anyio
from pydantic import ValidationError
from telegram import Update

from bridge.chat import AnswerView, ChatService, ChatWording, Incoming
from bridge.conversations import ConversationKey, Turn
from bridge.errors import FileRefusedError, PlatformError
from bridge.files import FileBody, fetch_url
from bridge.models import Agent
from bridge.runtime import Runtime
from bridge.stores import InFlightTurn, ThreadRef
from bridge_telegram._api import bot_call
from bridge_telegram._commands import HELP, ChatAdmins
from bridge_telegram._config import TelegramConfig
from bridge_telegram._inbound import Inbound, conversation_key, incoming, read_update
from bridge_telegram._outbound import Sender, TelegramAnswer, TelegramPlace

__all__ = ["SOURCE", "TelegramService"]

logger = logging.getLogger(__name__)

SOURCE = "telegram"


class TelegramService(ChatService[TelegramPlace, TelegramConfig]):
    """Everything the adapter does with an update, given a bot identity and the runtime."""

    source = SOURCE
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
        self.turn_policy = config.policy
        self.chat_admins = ChatAdmins(sender.bot, config.admin_cache_seconds)

    async def handle(self, update: Update) -> None:
        """Act on one update; logs instead of raising (it runs detached)."""
        await self.guarded(self._handle, update)

    async def _handle(self, update: Update) -> None:
        inbound = read_update(update, bot_id=self.bot_id, username=self.username)
        if inbound is None:
            return
        route = self.config.route_for(inbound.chat_id)
        mode = route.group_conversation or self.config.group_conversation
        key = conversation_key(inbound, mode, await self._reply_root(inbound))
        delivery = f"telegram:{self.bot_id}:{inbound.update_id}"
        template = self.config.email_template
        await self.receive(incoming(inbound, key, email_template=template, delivery=delivery))

    async def _reply_root(self, inbound: Inbound) -> int | None:
        """The reply thread a replied-to bot answer belongs to (thread mode in basic groups)."""
        if inbound.reply_thread is None or inbound.reply_thread == inbound.message_id:
            return None
        ref = await self.runtime.store.get_thread(
            self._answer_key(inbound.chat_id, inbound.reply_thread)
        )
        return int(ref.task_id) if ref else None

    @staticmethod
    def _answer_key(chat_id: int, message_id: int) -> str:
        return f"telegram-answer|{chat_id}|{message_id}"

    async def _remember_answer(
        self, key: ConversationKey, place: TelegramPlace, message_id: int, agent_id: str
    ) -> None:
        """In reply-thread mode, a reply to this answer continues the same thread."""
        if key.thread.startswith("reply:"):
            ref = ThreadRef(task_id=key.thread.removeprefix("reply:"), agent_id=agent_id)
            await self.runtime.store.put_thread(self._answer_key(place.chat_id, message_id), ref)

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
        if plain:
            await self.sender.say(place, text)
        else:
            await self.sender.notify(place, text)

    def allows(self, incoming: Incoming[TelegramPlace]) -> bool:
        return self.config.is_allowed(incoming.place.chat_id, incoming.user_id)

    async def is_admin(self, incoming: Incoming[TelegramPlace]) -> bool:
        """A creator or administrator of the chat (`getChatMember`)."""
        if incoming.user_id is None:
            return False
        return await self.chat_admins.is_admin(incoming.place.chat_id, int(incoming.user_id))

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
                logger.info("no typing indicator in chat %s: %s", place.chat_id, exc)
                return
            await anyio.sleep(self.config.typing_interval)

    def answer_view(self, incoming: Incoming[TelegramPlace], turn: Turn) -> AnswerView:
        place = incoming.place

        async def record(changes: dict[str, Any]) -> None:
            await turn.set_reply(**changes)
            if "message_id" in changes:
                agent_id = turn.record.agent_id
                await self._remember_answer(incoming.key, place, changes["message_id"], agent_id)

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
        try:
            place = TelegramPlace.model_validate(record.reply)
        except ValidationError:
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
