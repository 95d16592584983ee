"""The bot's commands (`/start`, `/new`, `/agent`, `/stop`, `/help`) as the chat flow's
control commands, and who is an administrator of a chat (`getChatMember`, cached)."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict

from telegram import Bot, BotCommand

from bridge.chat import Command
from bridge.errors import PlatformError
from bridge_telegram._api import bot_call

__all__ = ["BOT_COMMANDS", "HELP", "ChatAdmins", "command_of"]

logger = logging.getLogger(__name__)

BOT_COMMANDS = (
    BotCommand("start", "Start talking to the agent"),
    BotCommand("new", "Start a fresh conversation"),
    BotCommand("agent", "Switch agent (list them without a name)"),
    BotCommand("stop", "Stop the answer being written"),
    BotCommand("help", "What this bot can do"),
)

HELP = (
    "Send me a message and the agent answers here.\n\n"
    "- /new starts a fresh conversation\n"
    "- /agent NAME switches agent; /agent alone lists them\n"
    "- /stop stops the answer being written\n"
    "- In groups, mention me or reply to my messages."
)

_COMMANDS: dict[str, Command] = {
    "start": "help",
    "help": "help",
    "new": "reset",
    "stop": "stop",
    "agent": "agent",
}
_CHAT_ADMINS = frozenset({"creator", "administrator"})
_CACHED_MEMBERS = 10_000


def command_of(name: str | None, args: str) -> Command | None:
    """The control command a bot command is (`/agent` alone lists agents); None for text."""
    command = _COMMANDS.get(name or "")
    return "agents" if command == "agent" and not args else command


class ChatAdmins:
    """Whether a user is the creator or an administrator of a chat; trusted `ttl` seconds."""

    def __init__(self, bot: Bot, ttl: float) -> None:
        self.bot, self.ttl = bot, ttl
        self._members: OrderedDict[tuple[int, int], tuple[bool, float]] = OrderedDict()

    async def is_admin(self, chat_id: int, user_id: int) -> bool:
        cached = self._members.get((chat_id, user_id))
        if cached is not None and time.monotonic() - cached[1] < self.ttl:
            return cached[0]
        try:
            with bot_call("getChatMember"):
                member = await self.bot.get_chat_member(chat_id, user_id)
        except PlatformError as exc:
            logger.info("getChatMember %s/%s failed: %s", chat_id, user_id, exc)
            return False
        admin = member.status in _CHAT_ADMINS
        self._members[(chat_id, user_id)] = (admin, time.monotonic())
        self._members.move_to_end((chat_id, user_id))
        while len(self._members) > _CACHED_MEMBERS:
            self._members.popitem(last=False)
        return admin
