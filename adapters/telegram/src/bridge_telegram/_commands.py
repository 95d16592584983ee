"""The bot's commands (`/start`, `/new`, `/agent`, `/stop`, `/help`) and agent choice."""

from __future__ import annotations

import logging

from telegram import BotCommand

from bridge.conversations import ConversationKey
from bridge.errors import NotFoundError, UpstreamError
from bridge.runtime import Runtime
from bridge_telegram._config import TelegramConfig
from bridge_telegram._inbound import Inbound
from bridge_telegram._outbound import Place, Sender

__all__ = ["BOT_COMMANDS", "Commands"]

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


class Commands:
    """Answers commands and decides which agent a conversation talks to."""

    names = frozenset(command.command for command in BOT_COMMANDS)

    def __init__(self, config: TelegramConfig, runtime: Runtime, sender: Sender) -> None:
        self.config = config
        self.runtime = runtime
        self.sender = sender
        self._resolved: dict[str, str] = {}

    async def run(self, inbound: Inbound, key: ConversationKey, place: Place) -> None:
        conversations = self.runtime.conversations
        try:
            if inbound.command in ("start", "help"):
                await self.sender.notify(place, HELP)
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
                await self._agent(inbound.args, key, inbound.chat_id, place)
        except UpstreamError as exc:
            logger.warning("/%s failed: %s", inbound.command, exc)
            await self.sender.notify(place, "⚠️ The agent platform did not answer. Try again later.")

    async def _agent(self, name: str, key: ConversationKey, chat_id: int, place: Place) -> None:
        client = self.runtime.client
        if not name:
            current = await self.agent_for(key, chat_id, place, quiet=True)
            lines = [
                f"- `{agent.name}`{' (current)' if agent.id == current else ''}"
                + (f": {agent.description}" if agent.description else "")
                for agent in await client.list_agents()
            ]
            await self.sender.notify(place, "**Agents**\n\n" + "\n".join(lines))
            return
        try:
            agent = await client.find_agent(name)
        except NotFoundError:
            await self.sender.notify(place, f"No agent named `{name}`. Send /agent to list them.")
            return
        await self.runtime.conversations.choose_agent(key, agent.id)
        await self.sender.notify(
            place, f"🤖 Now talking to **{agent.name}**, in a fresh conversation."
        )

    async def agent_for(
        self, key: ConversationKey, chat_id: int, place: Place, *, quiet: bool = False
    ) -> str | None:
        """The key's chosen agent, else the chat's route, else `default_agent`, else the first.

        Tells the user and returns None when the configured agent does not exist.
        """
        chosen = await self.runtime.conversations.agent_for(key)
        if chosen:
            return chosen
        wanted = self.config.route_for(chat_id).agent or self.config.default_agent
        try:
            if wanted is None:
                agents = await self.runtime.client.list_agents()
                return agents[0].id if agents else None
            if wanted not in self._resolved:
                self._resolved[wanted] = (await self.runtime.client.find_agent(wanted)).id
            return self._resolved[wanted]
        except NotFoundError:
            if not quiet:
                await self.sender.notify(
                    place, f"⚠️ The configured agent `{wanted}` does not exist."
                )
            return None
