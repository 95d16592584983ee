"""Agent answers → Bot API calls, paced by the bridge's output scheduler.

Private chats stream a draft (`sendMessageDraft`) and then send the answer;
groups and topics get one message, created with the first visible content and
edited at most as often as the scheduler allows, with a status line for tool
steps. A failed `sendMessageDraft` sends that answer down the second path, and drafts
are tried again after `draft_cooldown` seconds. The answer's message and each overflow
part are recorded as soon as they exist, before the next is sent.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ConfigDict
from telegram import Bot, LinkPreviewOptions, Message, ReplyParameters

from bridge.chat import AnswerMessages, ApprovalRequest, Failure, Progress, SignInRequest, Step
from bridge.cooldown import Cooldown
from bridge.errors import PlatformError, PlatformRateLimitError
from bridge.scheduler import Destination, OutputScheduler, Priority
from bridge_telegram._api import NotModifiedError, bot_call
from bridge_telegram._render import MAX_TEXT, Rendered, render_final, render_preview

__all__ = ["Sender", "TelegramAnswer", "TelegramPlace", "status_line"]

logger = logging.getLogger(__name__)

_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)

OnRecord = Callable[[dict[str, Any]], Awaitable[None]]
"""Records changes to the turn's `TelegramPlace` (its message ids) before anything else is sent."""
PLACEHOLDER = "⏳"


class TelegramPlace(BaseModel):
    """Where an answer goes (chat, forum topic, the message it replies to, and once it
    exists the message carrying it): what a turn's ledger record keeps in `record.reply`."""

    model_config = ConfigDict(frozen=True)

    chat_id: int
    thread_id: int | None = None
    reply_to: int | None = None
    private: bool = False
    message_id: int | None = None
    parts: tuple[int, ...] = ()
    """Messages carrying the overflow of a long answer, in order."""

    @property
    def destination(self) -> Destination:
        """The chat: its calls run one at a time, on its budget (`space` the chat id)."""
        return Destination("telegram", str(self.chat_id))

    def beside(self, channel: str) -> Destination:
        """A budget of its own in the chat, for what is no message (drafts, chat actions)."""
        return Destination("telegram", f"{self.chat_id}:{channel}")


class Sender:
    """The Bot API calls of the adapter, each mapped to `bridge.errors`."""

    def __init__(
        self, bot: Bot, scheduler: OutputScheduler, *, draft_cooldown: float = 300.0
    ) -> None:
        self.bot = bot
        self.scheduler = scheduler
        #: Drafts are set aside for a while after `sendMessageDraft` failed, then tried again.
        self.drafts = Cooldown(draft_cooldown)

    @property
    def supports_drafts(self) -> bool:
        return not self.drafts.is_paused()

    async def post_now(
        self, place: TelegramPlace, piece: Rendered, *, reply: bool = True
    ) -> Message:
        """`sendMessage`, unscheduled: call it from inside a scheduled op."""
        reply_to = place.reply_to if reply else None
        with bot_call("sendMessage"):
            return await self.bot.send_message(
                place.chat_id,
                piece.text,
                entities=piece.entities or None,
                message_thread_id=place.thread_id,
                link_preview_options=_NO_PREVIEW,
                reply_parameters=ReplyParameters(reply_to, allow_sending_without_reply=True)
                if reply_to
                else None,
            )

    async def send(
        self,
        place: TelegramPlace,
        piece: Rendered,
        *,
        priority: Priority = Priority.FINAL,
        reply: bool = True,
    ) -> Message | None:
        """Send one message through the scheduler (never coalesced; retried after flood waits)."""
        return await self.scheduler.submit(
            place.destination, lambda: self.post_now(place, piece, reply=reply), priority=priority
        )

    async def edit(self, place: TelegramPlace, message_id: int, piece: Rendered) -> None:
        """`editMessageText`, unscheduled; an edit that changes nothing counts as done."""
        try:
            with bot_call("editMessageText"):
                await self.bot.edit_message_text(
                    piece.text,
                    chat_id=place.chat_id,
                    message_id=message_id,
                    entities=piece.entities or None,
                    link_preview_options=_NO_PREVIEW,
                )
        except NotModifiedError:
            return

    async def draft(self, place: TelegramPlace, draft_id: int, piece: Rendered) -> None:
        with bot_call("sendMessageDraft"):
            await self.bot.send_message_draft(
                place.chat_id,
                draft_id,
                piece.text,
                message_thread_id=place.thread_id,
                entities=piece.entities or None,
            )

    async def typing(self, place: TelegramPlace) -> None:
        """One `typing` chat action, on its own budget (it is no message)."""

        async def call() -> None:
            with bot_call("sendChatAction"):
                await self.bot.send_chat_action(
                    place.chat_id, "typing", message_thread_id=place.thread_id
                )

        await self.scheduler.submit(
            place.beside("action"), call, slot="typing", priority=Priority.STATUS
        )

    async def notify(
        self, place: TelegramPlace, markdown: str, *, priority: Priority = Priority.PROMPT
    ) -> Message | None:
        """Send a short Markdown notice (commands, prompts, errors)."""
        message = None
        for piece in render_final(markdown):
            message = await self.send(place, piece, priority=priority)
        return message

    async def say(self, place: TelegramPlace, text: str) -> None:
        """Send plain text, no Markdown: for replies that echo what a user wrote."""
        await self.send(place, Rendered(text[:MAX_TEXT]), priority=Priority.PROMPT)


def status_line(step: Step) -> str:
    """A progress step as the italic line above a preliminary answer."""
    if step.kind == "tool":
        icon = {"running": "🔧", "done": "✓", "failed": "⚠️"}[step.state]
        return f"{icon} {step.line}…" if step.state == "running" else f"{icon} {step.label}"
    return f"💭 {step.line}…" if step.kind == "thinking" else f"⏳ {step.line}"


class TelegramAnswer:
    """One answer as Telegram shows it (a `bridge.chat.AnswerView`): a draft or a message
    with a status line, edited by scheduled, coalescing refreshes, then the final text.
    Its messages (`bridge.chat.AnswerMessages`) are the answer's message and the overflow
    parts, each recorded through `on_record` as soon as it exists."""

    def __init__(
        self,
        sender: Sender,
        place: TelegramPlace,
        *,
        use_draft: bool,
        requester: int | None = None,
        bot_username: str = "",
        on_record: OnRecord | None = None,
        message_id: int | None = None,
        parts: tuple[int, ...] = (),
    ) -> None:
        self.sender, self.place = sender, place
        self.use_draft = use_draft and sender.supports_drafts
        self.requester, self.bot_username = requester, bot_username
        self.draft_id = secrets.randbelow(2**31 - 2) + 1
        self.body = ""
        self.status: str | None = None
        self.on_record = on_record
        #: The answer's message (recovery passes the recorded one), then the overflow parts.
        self.messages = AnswerMessages[Rendered, int](
            sender.scheduler,
            place.destination,
            self,
            ids=[message_id, *parts],
            slot=("answer", self.draft_id),
            key=lambda piece: piece.key,
        )
        self._drafted = ""

    # -- bridge.chat.AnswerView ------------------------------------------------------

    async def start(self) -> None:
        """Send and record the message that will carry the answer, before any answer text:
        recovery then edits it instead of sending the answer again (drafts still stream)."""
        try:
            await self.messages.place(Rendered(PLACEHOLDER))
        except PlatformError as exc:
            # The answer is then posted when it has content, as a new message.
            logger.info("no placeholder in chat %s: %s", self.place.chat_id, exc)

    async def text(self, delta: str, streamed: str) -> None:
        self.body, self.status = streamed, None
        self._changed()

    async def progress(self, step: Step, progress: Progress) -> None:
        self.status = status_line(step)
        self._changed()

    async def approval(self, request: ApprovalRequest) -> None:
        link = f"[Open the approval]({request.url})" if request.url else ""
        parts = (f"**⏸ {request.title}**", request.content, link)
        await self.sender.notify(self.place, "\n\n".join(part for part in parts if part))
        self.status = "⏸ Waiting for approval…"
        self._changed()

    async def sign_in(self, request: SignInRequest) -> None:
        """The sign-in link goes to the requesting user privately, never into a group."""
        self.status = "🔑 Waiting for sign-in…"
        self._changed()
        if self.requester is None:
            return
        text = f"🔑 To continue, sign in to {request.server}: {request.url}"
        try:
            await self.sender.notify(TelegramPlace(chat_id=self.requester, private=True), text)
        except PlatformError as exc:
            logger.info("could not message user %s privately: %s", self.requester, exc)
            if not self.place.private:
                await self.sender.notify(
                    self.place,
                    f"🔑 Sign-in needed: open a private chat with @{self.bot_username}, "
                    "send /start, then ask again.",
                )
            return
        if not self.place.private:
            await self.sender.notify(self.place, "🔑 I sent you a private message to sign in.")

    async def finish(self, answer: str) -> None:
        await self.messages.finish(render_final(answer))

    async def fail(self, failure: Failure, streamed: str) -> None:
        await self.messages.finish(render_final(failure.text))

    # -- the answer's messages (`bridge.chat.MessageCalls`) -------------------------------

    async def post(self, index: int, content: Rendered) -> int:
        """The answer's message replies to the asking message; overflow parts do not."""
        return (await self.sender.post_now(self.place, content, reply=index == 0)).message_id

    async def edit(self, message: int, content: Rendered) -> None:
        await self.sender.edit(self.place, message, content)

    async def posted(self, index: int, message: int) -> None:
        if self.on_record is not None:
            changes = {"message_id": message} if index == 0 else {"parts": self.messages.ids[1:]}
            await self.on_record(changes)

    def buckets(self, *, posting: bool) -> tuple[str, ...]:
        return ()  # the chat's own budget (its destination) is Telegram's limit

    # -- drawing ------------------------------------------------------------------------

    def _changed(self) -> None:
        """Something visible changed: queue a refresh (queued refreshes coalesce). Drafts
        are no messages: their own budget, so the answer never waits behind one."""
        if self.body or self.status:
            draft = self.place.beside("draft") if self.use_draft else None
            self.messages.refresh(self._refresh, destination=draft)

    async def _refresh(self) -> None:
        # Rendered when the budget allows, not per chunk: always the latest text.
        piece = render_preview(self.body, self.status)
        if not piece.text:
            return
        if not self.use_draft:
            await self.messages.draw(0, piece)
            return
        if piece.key == self._drafted:
            return
        try:
            await self.sender.draft(self.place, self.draft_id, piece)
            self._drafted = piece.key
        except PlatformRateLimitError:
            raise
        except PlatformError as exc:
            logger.info(
                "sendMessageDraft failed (%s): this answer is edited instead; drafts are "
                "tried again in %gs",
                exc,
                self.sender.drafts.seconds,
            )
            self.use_draft = False
            self.sender.drafts.pause()
            # Redrawn as a message on the chat's own budget, which its flood waits pause.
            self._changed()
