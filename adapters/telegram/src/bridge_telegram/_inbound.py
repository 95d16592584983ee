"""Telegram updates → the chat flow's `Incoming` messages: pure converters, no I/O.

`read_update` decides whether an update is addressed to the bot (private chats: always;
groups: mentions, replies to the bot, commands), reads its text, command, attachments and
sender, where to answer, and (`conversation_key`) the conversation it continues.
"""

from __future__ import annotations

from telegram import BotCommand, Message, MessageEntity, Update
from telegram import User as Sender
from telegram.constants import ChatType

from bridge.chat import Attachment, Command, Incoming
from bridge.conversations import ConversationKey
from bridge.models import User
from bridge_telegram._config import GroupConversation, TelegramConfig
from bridge_telegram._outbound import TelegramPlace

__all__ = ["BOT_COMMANDS", "HELP", "SOURCE", "conversation_key", "read_update"]

SOURCE = "telegram"
"""The adapter's name: its conversation keys, turns and file source."""

BOT_COMMANDS = (
    BotCommand("start", "Start talking to the agent"),
    BotCommand("new", "Start a fresh conversation"),
    BotCommand("agent", "Switch agent (list them without a name)"),
    BotCommand("stop", "Stop the answer being written"),
    BotCommand("help", "What this bot can do"),
)
HELP = "Send me a message and the agent answers here; in groups, mention me or reply to me.\n\n"
HELP += "\n".join(f"- /{c.command}: {c.description}" for c in BOT_COMMANDS)
"""What /help and /start say: the registered commands, so the two never disagree."""
_COMMANDS: dict[str, Command] = {
    "start": "help",
    "help": "help",
    "new": "reset",
    "stop": "stop",
    "agent": "agent",
}


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
        name = f"photo-{photo.file_unique_id}.jpg"
        found.append(Attachment(photo.file_id, name, "image/jpeg", photo.file_size))
    if (doc := message.document) is not None:
        name = doc.file_name or f"document-{doc.file_unique_id}"
        kind = doc.mime_type or "application/octet-stream"
        found.append(Attachment(doc.file_id, name, kind, doc.file_size))
    return tuple(found)


def _strip_mention(text: str, username: str) -> str:
    return text.replace(f"@{username}", "").strip() if username else text.strip()


def read_update(
    update: Update, *, bot_id: int, username: str, config: TelegramConfig
) -> Incoming[TelegramPlace] | None:
    """The message of `update` if the bot should act on it, else None. In groups the answer
    replies to it; in a forum topic it stays in the topic."""
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
    place = TelegramPlace(
        chat_id=message.chat.id,
        thread_id=topic,
        reply_to=None if is_private else message.message_id,
        private=is_private,
    )
    parent = message.reply_to_message
    # The root of the reply thread in a group: Telegram's, or the message replied to.
    root = message.message_thread_id or (parent.message_id if parent else None)
    user_id = None if sender is None else str(sender.id)
    name, args = command or ("", "")
    wanted = _COMMANDS.get(name)
    return Incoming(
        place,
        conversation_key(place, config, user_id, root or message.message_id),
        user_id=user_id,
        principal=None if sender is None else f"telegram:{sender.id}",
        text=_strip_mention(message.text or message.caption or "", username),
        user=None if sender is None else _user(sender, config.email_template),
        files=_attachments(message),
        command="agents" if wanted == "agent" and not args else wanted,
        args=args,
        private=is_private,
        delivery=f"telegram:{bot_id}:{update.update_id}",
    )


def _user(sender: Sender, email_template: str) -> User:
    names = " ".join(n for n in (sender.first_name, sender.last_name) if n)
    return User(
        email=email_template.format(user_id=sender.id),
        id=f"telegram:{sender.id}",
        first_name=sender.first_name,
        last_name=sender.last_name,
        display_name=sender.username or names or None,
    )


def conversation_key(
    place: TelegramPlace, config: TelegramConfig, user_id: str | None, reply_thread: int
) -> ConversationKey:
    """Private chat → the chat; topic → chat + topic; group → the chat, its reply thread,
    or (`"user"`) the sender; in `"user"` mode topics are per sender too."""
    mode: GroupConversation = (
        config.route_for(place.chat_id).group_conversation or config.group_conversation
    )
    space = str(place.chat_id)
    if place.private:
        return ConversationKey(SOURCE, space, "private")
    topic = f"topic:{place.thread_id}:" if place.thread_id is not None else ""
    if mode == "user":
        return ConversationKey(SOURCE, space, f"{topic}user:{user_id}")
    if topic:
        return ConversationKey(SOURCE, space, topic.rstrip(":"))
    if mode == "chat":
        return ConversationKey(SOURCE, space, "chat")
    return ConversationKey(SOURCE, space, f"reply:{reply_thread}")
