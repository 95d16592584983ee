"""Acting on inbound messages: commands, conversation turns, files, recovery delivery.

`Handler.handle(update)` runs one update to completion: it filters, dedupes,
then either answers a command or runs a conversation turn whose events are
drawn by an `AnswerView`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal
from urllib.parse import urlsplit

import anyio
from telegram import Update

from bridge.chat import NOT_SHOWN_TEXT
from bridge.conversations import ConversationKey, Message, Turn
from bridge.errors import FileRefusedError, PlatformError, RunFailedError, UpstreamError
from bridge.events import (
    AnalysisRecorded,
    AuthEventReceived,
    Event,
    TaskUpdated,
    TextDelta,
    ThoughtRecorded,
    ToolCallFinished,
    ToolCallRequested,
)
from bridge.files import FileBody, fetch_url
from bridge.models import Task, User
from bridge.runtime import Runtime
from bridge.stores import InFlightTurn, ThreadRef
from bridge_telegram._api import bot_call
from bridge_telegram._commands import Commands
from bridge_telegram._config import TelegramConfig
from bridge_telegram._inbound import Inbound, conversation_key, read_update
from bridge_telegram._outbound import AnswerView, Place, Sender

__all__ = ["SOURCE", "Handler", "failure_text"]

logger = logging.getLogger(__name__)

SOURCE = "telegram"


def failure_text(error: UpstreamError) -> str:
    """What the user reads when a turn ends without an answer."""
    if isinstance(error, RunFailedError):
        if error.status == "stopped":
            return "⏹ Stopped."
        detail = f": {error.task.result}" if error.task.result else "."
        return f"⚠️ The agent could not finish ({error.status}){detail}"
    return "⚠️ The agent platform did not answer. Please try again in a moment."


class Handler:
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
        place = Place(
            inbound.chat_id,
            inbound.topic_id,
            None if inbound.is_private else inbound.message_id,
            inbound.is_private,
        )
        key = conversation_key(inbound, self._group_mode(inbound), await self._reply_root(inbound))
        if inbound.command in self.commands.names:
            await self.commands.run(inbound, key, place)
            return
        await self.run_turn(inbound, key, place)

    def _group_mode(self, inbound: Inbound) -> Literal["chat", "thread"]:
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

    async def _files(self, inbound: Inbound, place: Place) -> tuple[str, ...]:
        """Sealed bridge URLs for attachments, streamed from Telegram when fetched; the
        token-bearing file URL stays here."""
        urls: list[str] = []
        for attachment in inbound.attachments:
            if attachment.size is not None and attachment.size > self.config.max_file_bytes:
                await self.sender.notify(place, f"⚠️ {attachment.filename} is too large to pass on.")
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

    async def run_turn(self, inbound: Inbound, key: ConversationKey, place: Place) -> None:
        agent_id = await self.commands.agent_for(key, inbound.chat_id, place)
        if agent_id is None:
            return
        files = await self._files(inbound, place)
        text = inbound.text or ("(see the attached file)" if files else "")
        if not text:
            return
        message = Message(
            text=text,
            user=self._user(inbound),
            principal=f"telegram:{inbound.user_id}" if inbound.user_id else None,
            files=files,
            reply=place.as_reply(),
        )
        view = AnswerView(self.sender, place, use_draft=place.is_private and self.config.use_drafts)

        async def queued() -> None:
            try:
                await self.sender.notify(place, "⏳ I'll answer this after the current reply.")
            except PlatformError as exc:
                # Best effort: raising here would drop the very message it announces.
                logger.info("could not tell chat %s its message waits: %s", place.chat_id, exc)

        async with anyio.create_task_group() as group:
            if not place.is_private:
                group.start_soon(self._keep_typing, place)
            try:
                async with self.runtime.conversations.turn(
                    key,
                    message,
                    agent_id=agent_id,
                    source=SOURCE,
                    policy=self.config.policy,
                    on_queued=queued,
                ) as turn:
                    if not turn.merged:
                        await self._draw(turn, view, inbound, place, key)
            finally:
                group.cancel_scope.cancel()

    async def _draw(
        self, turn: Turn, view: AnswerView, inbound: Inbound, place: Place, key: ConversationKey
    ) -> None:
        async def placed(message_id: int) -> None:
            await turn.set_reply(message_id=message_id)
            if key.thread.startswith("reply:"):
                root = key.thread.removeprefix("reply:")
                ref = ThreadRef(task_id=root, agent_id=turn.record.agent_id)
                await self.runtime.store.put_thread(
                    self._answer_key(place.chat_id, message_id), ref
                )

        view.on_message = placed
        try:
            async for event in turn:
                await self._on_event(event, view, inbound, place)
            task = turn.task
            final = (task.result if task and task.result else None) or view.text
            view.status = None
            await view.finish(final or "(no answer)")
        except UpstreamError as exc:
            view.status = None
            await view.finish(failure_text(exc))
        except PlatformError:
            raise
        except Exception as exc:  # a rendering bug ends this turn only, never the process
            await self.runtime.conversations.count_failure(turn.record, exc, stage="render")
            view.status = None
            view.text = ""
            await view.finish(NOT_SHOWN_TEXT)

    async def _on_event(
        self, event: Event, view: AnswerView, inbound: Inbound, place: Place
    ) -> None:
        if isinstance(event, TextDelta):
            view.text += event.text
            view.status = None
        elif isinstance(event, ToolCallRequested):
            view.status = f"🔧 Using {event.name}…"
        elif isinstance(event, ToolCallFinished):
            view.status = f"{'⚠️' if event.is_error else '✓'} {event.name}"
        elif isinstance(event, ThoughtRecorded | AnalysisRecorded):
            view.status = f"💭 {event.title or 'Thinking'}…"
        elif isinstance(event, TaskUpdated) and event.task.is_paused:
            await self._ask_approval(event.task, place)
            view.status = "⏸ Waiting for approval…"
        elif isinstance(event, AuthEventReceived) and event.is_login_required:
            await self._send_login(event, inbound, place)
            view.status = "🔑 Waiting for sign-in…"
        else:
            return
        view.changed()

    async def _ask_approval(self, task: Task, place: Place) -> None:
        request = task.hitl_request or {}
        title = str(request.get("title") or "Approval required")
        content = str(request.get("content") or request.get("description") or "")
        await self.sender.notify(place, f"**⏸ {title}**\n\n{content}".strip())

    async def _send_login(self, event: AuthEventReceived, inbound: Inbound, place: Place) -> None:
        """The sign-in link goes to the requesting user privately, never into a group."""
        server = event.server_name or "a connected service"
        text = f"🔑 To continue, sign in to {server}: {event.url}"
        if inbound.user_id is None:
            return
        dm = Place(inbound.user_id, is_private=True)
        try:
            await self.sender.notify(dm, text)
        except PlatformError as exc:
            logger.info("could not message user %s privately: %s", inbound.user_id, exc)
            if not place.is_private:
                await self.sender.notify(
                    place,
                    f"🔑 Sign-in needed: open a private chat with @{self.username}, "
                    "send /start, then ask again.",
                )
            return
        if not place.is_private:
            await self.sender.notify(place, "🔑 I sent you a private message to sign in.")

    async def _keep_typing(self, place: Place) -> None:
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
        """Finish a turn whose process died: edit the recorded message, or send the answer."""
        place = Place.from_reply(record.reply)
        if error is not None:
            text = failure_text(error)
        else:
            text = (task.result if task else None) or "(no answer)"
        message_id = record.reply.get("message_id")
        await self.sender.deliver(place, int(message_id) if message_id else None, text)
