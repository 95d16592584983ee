"""Telegram updates → what the bridge acts on: pure converters, no I/O.

`read_update` decides whether an update is addressed to the bot (private
chats: always; groups: mentions, replies to the bot, commands) and extracts
text, command, attachments and where to answer; `conversation_key` derives
the conversation it continues; `incoming` is the chat flow's reading of it.
"""

from __future__ import annotations

from dataclasses import dataclass

from telegram import Message, MessageEntity, Update
from telegram.constants import ChatType

from bridge.chat import Attachment, Incoming
from bridge.conversations import ConversationKey
from bridge.models import User
from bridge_telegram._commands import command_of
from bridge_telegram._config import GroupConversation
from bridge_telegram._outbound import TelegramPlace

__all__ = ["Inbound", "conversation_key", "incoming", "read_update"]

ADAPTER = "telegram"


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message addressed to the bot."""

    update_id: int
    chat_id: int
    message_id: int
    user_id: int | None
    first_name: str | None
    last_name: str | None
    username: str | None
    text: str
    is_private: bool
    topic_id: int | None
    """Forum topic (`message_thread_id` of a topic message): answers stay in it."""
    reply_thread: int | None
    """Root of the reply thread in a group (Telegram's `message_thread_id`, or the
    message replied to, or the message itself)."""
    command: str | None = None
    args: str = ""
    attachments: tuple[Attachment, ...] = ()


def _command(message: Message, username: str) -> tuple[str, str] | None:
    text = message.text or ""
    for entity in message.entities:
        if entity.type != MessageEntity.BOT_COMMAND or entity.offset != 0:
            continue
        word = message.parse_entity(entity)[1:]
        name, _, target = word.partition("@")
        if target and target.casefold() != username.casefold():
            return None
        return name.casefold(), text[len(message.parse_entity(entity)) :].strip()
    return None


def _mentions(message: Message, bot_id: int, username: str) -> bool:
    entities = message.parse_entities() or message.parse_caption_entities()
    for entity, value in entities.items():
        if entity.type == MessageEntity.MENTION and value[1:].casefold() == username.casefold():
            return True
        if entity.type == MessageEntity.TEXT_MENTION and entity.user and entity.user.id == bot_id:
            return True
    return False


def _replies_to_bot(message: Message, bot_id: int) -> bool:
    parent = message.reply_to_message
    if parent is None or parent.forum_topic_created is not None:
        return False  # in forums every message "replies" to the topic's first message
    return parent.from_user is not None and parent.from_user.id == bot_id


def _attachments(message: Message) -> tuple[Attachment, ...]:
    found: list[Attachment] = []
    if message.photo:
        photo = message.photo[-1]  # the largest size
        found.append(
            Attachment(
                photo.file_id,
                f"photo-{photo.file_unique_id}.jpg",
                content_type="image/jpeg",
                size=photo.file_size,
            )
        )
    if message.document:
        doc = message.document
        found.append(
            Attachment(
                doc.file_id,
                doc.file_name or f"document-{doc.file_unique_id}",
                content_type=doc.mime_type or "application/octet-stream",
                size=doc.file_size,
            )
        )
    return tuple(found)


def _strip_mention(text: str, username: str) -> str:
    return text.replace(f"@{username}", "").strip() if username else text.strip()


def read_update(update: Update, *, bot_id: int, username: str) -> Inbound | None:
    """The message of `update` if the bot should act on it, else None."""
    message = update.message
    if message is None or message.chat is None:
        return None
    sender = message.from_user
    if sender is not None and sender.id == bot_id:
        return None
    is_private = message.chat.type == ChatType.PRIVATE
    command = _command(message, username)
    addressed = is_private or command is not None
    if not (addressed or _mentions(message, bot_id, username) or _replies_to_bot(message, bot_id)):
        return None
    topic = message.message_thread_id if message.is_topic_message else None
    reply_thread = None
    if not is_private and topic is None:
        parent = message.reply_to_message
        reply_thread = message.message_thread_id or (parent.message_id if parent else None)
        reply_thread = reply_thread or message.message_id
    text = message.text or message.caption or ""
    name, args = command if command else (None, "")
    return Inbound(
        update_id=update.update_id,
        chat_id=message.chat.id,
        message_id=message.message_id,
        user_id=sender.id if sender else None,
        first_name=sender.first_name if sender else None,
        last_name=sender.last_name if sender else None,
        username=sender.username if sender else None,
        text=_strip_mention(text, username),
        is_private=is_private,
        topic_id=topic,
        reply_thread=reply_thread,
        command=name,
        args=args,
        attachments=_attachments(message),
    )


def conversation_key(
    inbound: Inbound, group_conversation: GroupConversation, reply_root: int | None = None
) -> ConversationKey:
    """Private chat → the chat; topic → chat + topic; group → the chat, its reply thread,
    or (`"user"`) the sender; in `"user"` mode topics are per sender too.

    `reply_root` is the thread a bot answer being replied to belongs to, when known.
    """
    space = str(inbound.chat_id)
    if inbound.is_private:
        return ConversationKey(ADAPTER, space, "private")
    topic = f"topic:{inbound.topic_id}:" if inbound.topic_id is not None else ""
    if group_conversation == "user":
        return ConversationKey(ADAPTER, space, f"{topic}user:{inbound.user_id}")
    if topic:
        return ConversationKey(ADAPTER, space, topic.rstrip(":"))
    if group_conversation == "chat":
        return ConversationKey(ADAPTER, space, "chat")
    return ConversationKey(ADAPTER, space, f"reply:{reply_root or inbound.reply_thread}")


def incoming(
    inbound: Inbound, key: ConversationKey, *, email_template: str, delivery: str
) -> Incoming[TelegramPlace]:
    """The chat flow's reading of a message: answers reply to it in groups and stay in its
    forum topic; a bot command is a control command."""
    place = TelegramPlace(
        chat_id=inbound.chat_id,
        thread_id=inbound.topic_id,
        reply_to=None if inbound.is_private else inbound.message_id,
        private=inbound.is_private,
    )
    user_id = inbound.user_id
    return Incoming(
        place,
        key,
        user_id=None if user_id is None else str(user_id),
        principal=None if user_id is None else f"telegram:{user_id}",
        text=inbound.text,
        user=None if user_id is None else _user(inbound, user_id, email_template),
        files=inbound.attachments,
        command=command_of(inbound.command, inbound.args),
        args=inbound.args,
        private=inbound.is_private,
        delivery=delivery,
    )


def _user(inbound: Inbound, user_id: int, email_template: str) -> User:
    names = " ".join(n for n in (inbound.first_name, inbound.last_name) if n)
    return User(
        email=email_template.format(user_id=user_id),
        id=f"telegram:{user_id}",
        first_name=inbound.first_name,
        last_name=inbound.last_name,
        display_name=inbound.username or names or None,
    )
