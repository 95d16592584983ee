"""The bot's commands (`/start`, `/new`, `/agent`, `/stop`, `/help`), who may use the ones
that act on a conversation, and which agent a conversation talks to."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict

from telegram import BotCommand

from bridge.chat import AgentDirectory, may_control
from bridge.conversations import ConversationKey
from bridge.errors import PlatformError, UpstreamError
from bridge.models import Agent
from bridge.runtime import Runtime
from bridge_telegram._api import bot_call
from bridge_telegram._config import TelegramConfig
from bridge_telegram._inbound import Inbound
from bridge_telegram._outbound import Sender, TelegramPlace

__all__ = ["BOT_COMMANDS", "Commands", "principal"]

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

NOT_YOURS = (
    "Only the person who asked, or an administrator of this chat, can do that in this conversation."
)
_CHAT_ADMINS = frozenset({"creator", "administrator"})
_CACHED_MEMBERS = 10_000
_NAME_CHARS = 64


def principal(user_id: int | None) -> str | None:
    return f"telegram:{user_id}" if user_id is not None else None


class Commands:
    """Answers commands and decides which agent a conversation talks to."""

    names = frozenset(command.command for command in BOT_COMMANDS)

    def __init__(self, config: TelegramConfig, runtime: Runtime, sender: Sender) -> None:
        self.config = config
        self.runtime = runtime
        self.sender = sender
        self.directory = AgentDirectory(runtime.client)
        self.admins = frozenset(f"telegram:{admin}" for admin in config.admins)
        self._members: OrderedDict[tuple[int, int], tuple[bool, float]] = OrderedDict()

    async def run(self, inbound: Inbound, key: ConversationKey, place: TelegramPlace) -> None:
        conversations = self.runtime.conversations
        try:
            if inbound.command in ("start", "help"):
                await self.sender.notify(place, HELP)
            elif inbound.command == "agent" and not inbound.args:
                await self._list(key, inbound.chat_id, place)
            elif not await self.may_control(inbound, key):
                await self.sender.notify(place, NOT_YOURS)
            elif inbound.command == "new":
                await conversations.reset(key)
                await self.sender.notify(
                    place, "🆕 Fresh conversation: I have forgotten the last one."
                )
            elif inbound.command == "stop":
                # A running turn shows "Stopped" itself when its task ends.
                if await conversations.stop(key) is None:
                    await self.sender.notify(place, "Nothing to stop.")
            elif inbound.command == "agent":
                await self._switch(inbound, key, place)
        except UpstreamError as exc:
            logger.warning("/%s failed: %s", inbound.command, exc)
            await self.sender.notify(place, "⚠️ The agent platform did not answer. Try again later.")

    async def may_control(self, inbound: Inbound, key: ConversationKey) -> bool:
        """Private chats: always. Groups: the conversation's requester, a configured admin,
        a chat administrator, or anyone when the conversation has no one yet."""
        if inbound.is_private:
            return True
        conversations = self.runtime.conversations
        requester = await conversations.requester(key)
        if may_control(principal(inbound.user_id), requester, self.admins):
            return True
        if requester is None and await conversations.thread_for(key) is None:
            return conversations.waiting(key) == 0
        return await self._is_chat_admin(inbound.chat_id, inbound.user_id)

    async def _is_chat_admin(self, chat_id: int, user_id: int | None) -> bool:
        """`getChatMember` says creator or administrator; trusted `admin_cache_seconds`."""
        if user_id is None:
            return False
        cached = self._members.get((chat_id, user_id))
        if cached is not None and time.monotonic() - cached[1] < self.config.admin_cache_seconds:
            return cached[0]
        try:
            with bot_call("getChatMember"):
                member = await self.sender.bot.get_chat_member(chat_id, user_id)
        except PlatformError as exc:
            logger.info("getChatMember %s/%s failed: %s", chat_id, user_id, exc)
            return False
        admin = member.status in _CHAT_ADMINS
        self._members[(chat_id, user_id)] = (admin, time.monotonic())
        self._members.move_to_end((chat_id, user_id))
        while len(self._members) > _CACHED_MEMBERS:
            self._members.popitem(last=False)
        return admin

    async def allowed_agents(self, chat_id: int) -> list[Agent]:
        agents = await self.directory.agents()
        return [a for a in agents if self.config.allows_agent(chat_id, a.id, a.name)]

    async def _list(self, key: ConversationKey, chat_id: int, place: TelegramPlace) -> None:
        current = await self.agent_for(key, chat_id, place, quiet=True)
        lines = [
            f"- `{agent.name}`{' (current)' if agent.id == current else ''}"
            + (f": {agent.description}" if agent.description else "")
            for agent in await self.allowed_agents(chat_id)
        ]
        await self.sender.notify(place, "**Agents**\n\n" + ("\n".join(lines) or "(none)"))

    async def _switch(self, inbound: Inbound, key: ConversationKey, place: TelegramPlace) -> None:
        agent = await self.directory.find(inbound.args)
        if agent is None or not self.config.allows_agent(inbound.chat_id, agent.id, agent.name):
            shown = " ".join(inbound.args.split())[:_NAME_CHARS]
            await self.sender.say(place, f"No agent named “{shown}”. Send /agent to list them.")
            return
        await self.runtime.conversations.choose_agent(key, agent.id, principal(inbound.user_id))
        await self.sender.notify(
            place, f"🤖 Now talking to **{agent.name}**, in a fresh conversation."
        )

    async def agent_for(
        self, key: ConversationKey, chat_id: int, place: TelegramPlace, *, quiet: bool = False
    ) -> str | None:
        """The key's chosen agent (if still allowed), else the chat's route, else
        `default_agent`, else the first allowed agent.

        Tells the user and returns None when the configured agent does not exist.
        """
        chosen = await self.runtime.conversations.agent_for(key)
        if chosen:
            agent = await self.directory.find(chosen)
            if agent is not None and self.config.allows_agent(chat_id, agent.id, agent.name):
                return agent.id
        wanted = self.config.route_for(chat_id).agent or self.config.default_agent
        if wanted is None:
            allowed = await self.allowed_agents(chat_id)
            return allowed[0].id if allowed else None
        agent = await self.directory.find(wanted)
        if agent is None and not quiet:
            await self.sender.notify(place, f"⚠️ The configured agent `{wanted}` does not exist.")
        return agent.id if agent else None
