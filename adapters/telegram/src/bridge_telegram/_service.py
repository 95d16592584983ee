"""Acting on inbound messages: commands, conversation turns, files, recovery delivery.

`TelegramService.handle(update)` runs one update to completion: it filters, dedupes,
then either answers a command or runs a conversation turn whose events are
drawn by an `AnswerView`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import anyio
from telegram import Update

from bridge.chat import UserGate, drive, failure_of, final_answer
from bridge.conversations import ConversationKey, Message
from bridge.errors import FileRefusedError, PlatformError, UpstreamError
from bridge.files import FileBody, fetch_url
from bridge.models import Task, User
from bridge.runtime import Runtime
from bridge.stores import InFlightTurn, ThreadRef
from bridge_telegram._api import bot_call
from bridge_telegram._commands import Commands, principal
from bridge_telegram._config import GroupConversation, TelegramConfig
from bridge_telegram._inbound import Inbound, conversation_key, read_update
from bridge_telegram._outbound import Sender, TelegramAnswer, TelegramPlace

__all__ = ["SOURCE", "TelegramService"]

logger = logging.getLogger(__name__)

SOURCE = "telegram"


SLOW_DOWN = "⏳ You are sending messages faster than I can take them; please slow down."
DROPPED = (
    "⚠️ Too many messages are waiting for this conversation: I dropped this one. "
    "Send it again once I have answered."
)


class TelegramService:
    """Everything the adapter does with an update, given a bot identity and the runtime."""

    def __init__(
        self,
        config: TelegramConfig,
        runtime: Runtime,
        sender: Sender,
        *,
        bot_id: int,
        username: str,
    ) -> None:
        self.config = config
        self.runtime = runtime
        self.sender = sender
        self.bot_id = bot_id
        self.username = username
        self.commands = Commands(config, runtime, sender)
        self.gate = UserGate(
            config.user_rate_limit,
            config.user_rate_window,
            store=runtime.store,
            scope=f"telegram:{bot_id}",
        )
        self._turns: Counter[str] = Counter()

    async def handle(self, update: Update) -> None:
        """Act on one update; logs instead of raising (it runs detached)."""
        try:
            await self._handle(update)
        except Exception:
            logger.exception("update %s failed", update.update_id)

    async def _handle(self, update: Update) -> None:
        inbound = read_update(update, bot_id=self.bot_id, username=self.username)
        if inbound is None:
            return
        if not self.config.is_allowed(inbound.chat_id, inbound.user_id):
            logger.info("ignoring chat %s / user %s: not allowed", inbound.chat_id, inbound.user_id)
            return
        delivery = f"telegram:{self.bot_id}:{inbound.update_id}"
        if not await self.runtime.conversations.first_delivery(delivery):
            logger.info("update %s was already handled", inbound.update_id)
            return
        who = str(inbound.user_id) if inbound.user_id is not None else f"chat{inbound.chat_id}"
        place = TelegramPlace(
            chat_id=inbound.chat_id,
            thread_id=inbound.topic_id,
            reply_to=None if inbound.is_private else inbound.message_id,
            private=inbound.is_private,
        )
        if not await self.gate.admit(who):
            # Before anything is posted, downloaded or sent upstream; told once per window.
            logger.info("user %s is over the rate limit; update %s dropped", who, update.update_id)
            if await self.gate.tell(who):
                await self.sender.notify(place, SLOW_DOWN)
            return
        key = conversation_key(inbound, self._group_mode(inbound), await self._reply_root(inbound))
        if inbound.command in self.commands.names:
            await self.commands.run(inbound, key, place)
            return
        await self.run_turn(inbound, key, place)

    def _group_mode(self, inbound: Inbound) -> GroupConversation:
        route = self.config.route_for(inbound.chat_id)
        return route.group_conversation or self.config.group_conversation

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

    # -- turns -----------------------------------------------------------------

    def _user(self, inbound: Inbound) -> User | None:
        if inbound.user_id is None:
            return None
        names = " ".join(n for n in (inbound.first_name, inbound.last_name) if n)
        return User(
            email=self.config.email_template.format(user_id=inbound.user_id),
            id=f"telegram:{inbound.user_id}",
            first_name=inbound.first_name,
            last_name=inbound.last_name,
            display_name=inbound.username or names or None,
        )

    async def _files(self, inbound: Inbound, place: TelegramPlace) -> tuple[str, ...]:
        """Sealed bridge URLs for attachments, streamed from Telegram when fetched; the
        token-bearing file URL stays here."""
        urls: list[str] = []
        for attachment in inbound.attachments:
            if attachment.size is not None and attachment.size > self.config.max_file_bytes:
                # The name is the user's text: sent plain, never as Markdown.
                await self.sender.say(place, f"⚠️ {attachment.filename} is too large to pass on.")
                continue
            urls.append(
                self.runtime.files.publish(
                    SOURCE,
                    attachment.file_id,
                    filename=attachment.filename,
                    content_type=attachment.content_type,
                    limit=self.config.max_file_bytes,
                    owner=f"telegram:{inbound.user_id}",
                )
            )
        return tuple(urls)

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

    async def run_turn(self, inbound: Inbound, key: ConversationKey, place: TelegramPlace) -> None:
        agent_id = await self.commands.agent_for(key, inbound.chat_id, place)
        if agent_id is None:
            return
        name = str(key)
        if self._turns[name] and self.runtime.conversations.waiting(key) >= self.config.max_queued:
            await self.sender.notify(place, DROPPED)
            return
        self._turns[name] += 1
        try:
            await self._turn(inbound, key, place, agent_id)
        finally:
            self._turns[name] -= 1
            if not self._turns[name]:
                del self._turns[name]

    async def _turn(
        self, inbound: Inbound, key: ConversationKey, place: TelegramPlace, agent_id: str
    ) -> None:
        files = await self._files(inbound, place)
        text = inbound.text or ("(see the attached file)" if files else "")
        if not text:
            return
        message = Message(
            text=text,
            user=self._user(inbound),
            principal=principal(inbound.user_id),
            files=files,
            reply=place.model_dump(exclude_none=True),
        )
        view = TelegramAnswer(
            self.sender,
            place,
            use_draft=place.private and self.config.use_drafts,
            requester=inbound.user_id,
            bot_username=self.username,
        )

        async def queued() -> None:
            try:
                await self.sender.notify(place, "⏳ I'll answer this after the current reply.")
            except PlatformError as exc:
                # Best effort: raising here would drop the very message it announces.
                logger.info("could not tell chat %s its message waits: %s", place.chat_id, exc)

        conversations = self.runtime.conversations
        async with anyio.create_task_group() as group:
            if not place.private:
                group.start_soon(self._keep_typing, place)
            try:
                async with conversations.turn(
                    key,
                    message,
                    agent_id=agent_id,
                    source=SOURCE,
                    policy=self.config.policy,
                    on_queued=queued,
                ) as turn:
                    if not turn.merged:

                        async def record(changes: dict[str, Any]) -> None:
                            await turn.set_reply(**changes)
                            if "message_id" in changes:
                                await self._remember_answer(
                                    key, place, changes["message_id"], turn.record.agent_id
                                )

                        view.on_record = record
                        await drive(turn, view, conversations)
            finally:
                group.cancel_scope.cancel()

    async def _remember_answer(
        self, key: ConversationKey, place: TelegramPlace, message_id: int, agent_id: str
    ) -> None:
        """In reply-thread mode, a reply to this answer continues the same thread."""
        if key.thread.startswith("reply:"):
            ref = ThreadRef(task_id=key.thread.removeprefix("reply:"), agent_id=agent_id)
            await self.runtime.store.put_thread(self._answer_key(place.chat_id, message_id), ref)

    async def _keep_typing(self, place: TelegramPlace) -> None:
        while True:
            try:
                await self.sender.typing(place)
            except PlatformError as exc:
                logger.info("no typing indicator in chat %s: %s", place.chat_id, exc)
                return
            await anyio.sleep(self.config.typing_interval)

    # -- recovery ----------------------------------------------------------------

    async def deliver(
        self, record: InFlightTurn, task: Task | None, error: UpstreamError | None
    ) -> None:
        """Finish a turn whose process died: edit the recorded message and overflow parts,
        send (and record) what was never sent."""
        place = TelegramPlace.model_validate(record.reply)
        text = failure_of(error).text if error is not None else final_answer(task, "")

        async def keep(changes: dict[str, Any]) -> None:
            nonlocal record
            record = record.model_copy(update={"reply": {**record.reply, **changes}})
            await self.runtime.store.record_turn(record)

        view = TelegramAnswer(
            self.sender,
            place,
            use_draft=False,
            on_record=keep,
            message_id=place.message_id,
            parts=place.parts,
        )
        await view.finish(text)
